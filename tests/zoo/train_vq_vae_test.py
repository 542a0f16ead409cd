import json

import numpy as np
import pytest

import keras_vae as kv
from keras_vae.runner.families import vq_vae
from zoo import train_vq_vae

SMOKE = ["vq_vae_mnist", "--epochs", "1", "--prior-epochs", "1"]
SMOKE += ["--train-images", "256", "--test-images", "64"]


@pytest.mark.slow
def test_smoke_run_writes_a_loadable_preset_with_samples(tmp_path):
    output, run_dir = tmp_path / "preset", tmp_path / "run"
    args = [*SMOKE, "--output", str(output), "--run-dir", str(run_dir)]
    metadata = train_vq_vae.main(args)
    model = kv.from_preset(output)
    assert isinstance(model, kv.VQVAE) and model.prior is not None
    stored = json.loads((output / "metadata.json").read_text())
    metrics = stored["metrics"]
    assert metrics["test_images"] == 64 and metrics["check_images"] == 64
    assert 0 < metrics["test_mse"] < 1 and metrics["test_prior_bits_per_code"] > 0
    assert 1 <= metrics["test_codes_used"] <= metrics["num_embeddings"]
    assert metrics["test_codes_used_thresholded"] <= metrics["test_codes_used"]
    assert 0 <= metrics["test_mse_clipped"] <= metrics["test_mse"]
    assert (output / stored["samples"]["file"]).is_file()
    ((x_test, _),) = kv.datasets.load("mnist", ("test",))
    np.testing.assert_array_equal(
        model.encode(x_test[: vq_vae.REFERENCE_IMAGES]),
        stored["reference_encode"]["encoding_indices"],
    )
    assert stored["training_command"].startswith("python -m zoo.train_vq_vae vq_vae_mnist")
    assert set(stored["last_epoch_logs"]) == {"train", "prior"}
    assert stored["vq_vae_train_seconds"] > 0 and stored["prior_train_seconds"] > 0
    # A second call finds both stages done and writes the same figures.
    again = train_vq_vae.main(args)
    assert again["metrics"]["test_mse"] == metadata["metrics"]["test_mse"]
