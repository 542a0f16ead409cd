import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras_vae as kv
from zoo import train

SHORT = ["--epochs", "1", "--eval-samples", "10", "--eval-images", "100"]


@pytest.mark.slow
def test_short_run_writes_a_loadable_preset_and_resumes(tmp_path):
    output = tmp_path / "preset"
    run_dir = tmp_path / "run"
    args = [
        "vae_binarized_mnist",
        *SHORT,
        "--train-images",
        "256",
        "--output",
        str(output),
        "--run-dir",
        str(run_dir),
    ]
    metadata = train.main(args)

    model = kv.VAE.from_preset(output)
    assert model.latent_dim == train.RECIPES["vae_binarized_mnist"]["model"]["latent_dim"]
    stored = json.loads((output / "metadata.json").read_text())
    assert stored == model.preset_metadata
    assert stored["training_command"].startswith(
        "python -m zoo.train vae_binarized_mnist --epochs 1"
    )
    assert stored["epochs_completed"] == 1
    metrics = stored["metrics"]
    assert metrics["test_nll_importance_samples"] == 10
    assert metrics["test_nll_images"] == 100
    assert np.isfinite(metrics["test_nll"])
    assert metrics["test_elbo_images"] == 100
    assert 0 <= metrics["active_units"] <= model.latent_dim
    np.testing.assert_allclose(
        model.encode(kv.datasets.load("binarized_mnist", ("test",))[0][0][:4])[0],
        stored["reference_encode"]["z_mean"],
        atol=1e-5,
    )
    assert metadata["sha256"] == stored["sha256"]

    # A second invocation on the same run folder does not train again; it
    # reuses the finished run and the cached evaluation. (A new process,
    # as a user would run it.)
    seconds = json.loads((run_dir / "done.json").read_text())["train_seconds"]
    result = subprocess.run(
        [sys.executable, "-m", "zoo.train", *args],
        cwd=Path(train.__file__).resolve().parents[1],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Training already done" in result.stdout
    again = json.loads((output / "metadata.json").read_text())
    assert again["train_seconds"] == round(seconds, 1)
    assert again["metrics"]["test_nll"] == metrics["test_nll"]
    assert len(again["commands"]) == 2


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        train.main(["no_such_preset"])
    with pytest.raises(SystemExit):
        train.main(["vae_binarized_mnist", "--epochs", "0"])
