import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae.datasets import sprites
from zoo import rechecks, recipes, train_sprites

SMOKE = ["--steps", "4", "--steps-per-epoch", "2", "--eval-fraction", "0.002"]
SMOKE += ["--validation-images", "64"]


def test_recipes_differ_only_in_the_kl_term():
    beta, plain = (recipes.load(n) for n in ("beta_vae_sprites", "vae_sprites"))
    for key in ("architecture", "optimizer", "batch_size", "steps", "seed"):
        assert beta[key] == plain[key]
    assert (beta["class"], plain["class"]) == ("BetaVAE", "VAE")
    assert plain["model"] == {} and beta["model"]["capacity_max"] == 20.0


def stored_command(preset):
    return json.loads((preset / "metadata.json").read_text())["training_command"]


@pytest.mark.slow
def test_smoke_run_writes_a_loadable_preset_with_metrics(tmp_path):
    output, run_dir = tmp_path / "preset", tmp_path / "run"
    figure = tmp_path / "figures" / "traversal.png"
    args = ["beta_vae_sprites", *SMOKE, "--output", str(output)]
    args += ["--run-dir", str(run_dir), "--figure", str(figure)]
    metadata = train_sprites.main(args)
    assert (output / "traversal.png").read_bytes().startswith(b"\x89PNG")
    # The recorded command's --figure (python -m zoo.train_sprites ... --figure F).
    assert figure.read_bytes() == (output / "traversal.png").read_bytes()
    assert stored_command(output).startswith("python -m zoo.train_sprites beta_vae_sprites")
    model = kv.BetaVAE.from_preset(output)
    assert model.capacity_max == 20.0 and model.latent_dim == 10
    stored = json.loads((output / "metadata.json").read_text())
    assert stored["steps_trained"] == 4
    last_epoch = stored["last_epoch_logs"]
    assert 0.0 <= last_epoch["check_mig"] <= 1.0 and "gap_x" in last_epoch
    metrics = stored["metrics"]
    for name in (
        "mig",
        "factor_vae",
        "factor_vae_active_only",
        "dci",
        "check_mig",
        "check_factor_vae",
        "check_factor_vae_active_only",
        "check_dci",
    ):
        assert 0.0 <= metrics[name] <= 1.0
    assert stored["metric_protocols"]["check_mig"]["num_samples"] == 4
    reference = stored["reference_encode"]
    z_mean = model.encode(sprites.sprites_images(reference["classes"]))[0]
    np.testing.assert_allclose(z_mean, reference["z_mean"], atol=1e-5)
    # What CI reruns on a real preset: the cheap check_* protocols.
    checks = rechecks.recheck_sprites_metrics(output, atol=1e-6)
    assert set(checks) == {
        "check_mig",
        "check_factor_vae",
        "check_factor_vae_active_only",
        "check_dci",
    }
    # A second call reuses the finished run and the cached metrics.
    again = train_sprites.main(args)
    assert again["metrics"]["mig"] == metadata["metrics"]["mig"]
    assert (output / "traversal.png").is_file()


NO_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = None  # any `import tensorflow` now fails
from zoo import recipes, rechecks, train_sprites
if sys.argv[1:]:
    metadata = train_sprites.main(sys.argv[1:])
    print("steps_trained", metadata["steps_trained"])
assert sys.modules["tensorflow"] is None
print("done without tensorflow")
"""


@pytest.mark.slow
def test_trains_without_tensorflow_installed(tmp_path):
    # GPU machines may have JAX or PyTorch but no TensorFlow: the whole
    # recipe (data, training, metrics, preset) must not need it. The JAX and
    # torch passes train it; the TensorFlow pass, whose backend cannot run
    # without TensorFlow, imports the recipe's modules on PyTorch (training
    # there too would repeat the torch pass: 25-30 s).
    backend = keras.backend.backend()
    args = []
    if backend == "tensorflow":
        backend = "torch"
    else:
        args = ["beta_vae_sprites", *SMOKE, "--output", str(tmp_path / "preset")]
        args += ["--run-dir", str(tmp_path / "run")]
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": root}
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done without tensorflow" in result.stdout
    if args:
        assert "steps_trained 4" in result.stdout
        assert not (tmp_path / "run" / "backup").exists()  # removed once done
