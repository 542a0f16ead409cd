"""`python -m zoo.remeasure_check_nll` on tiny preset folders: it stores the
runner's check figure (`image_vae.check_nll_metrics`) and says what it
replaced, keeps the folder loadable, and re-registers a built-in preset."""

import json
import shutil

import numpy as np
import pytest

import keras_vae as kv
from keras_vae import presets
from keras_vae.runner.families.image_vae import CHECK_IMAGES, random_subset
from zoo import remeasure_check_nll

OLD_METRICS = {
    "check_nll": 123.0,
    "check_nll_importance_samples": 100,
    "check_nll_images": 1000,
    "check_nll_subset_seed": 0,
    "check_nll_seed": 0,
    "test_nll": 120.0,
}


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    """An untrained 2-d MLP VAE saved as a preset whose metadata names the
    binarized MNIST test split and stores an old check figure."""
    model = kv.VAE(
        input_shape=(28, 28, 1), latent_dim=2, architecture="mlp", hidden_dims=(16,), seed=0
    )
    folder = tmp_path_factory.mktemp("presets") / "tiny_vae"
    metadata = {"dataset": {"name": "binarized_mnist"}, "metrics": OLD_METRICS}
    presets.save_to_preset(model, folder, metadata)
    ((x_test, _),) = kv.datasets.load("binarized_mnist", ("test",))
    check = random_subset(x_test, CHECK_IMAGES)
    expected = -np.mean(model.log_likelihood(check, num_samples=100, seed=0))
    return folder, expected


def test_a_preset_folder_gets_the_current_check_figure(tiny_preset, tmp_path, capsys):
    folder = tmp_path / "tiny_vae"
    shutil.copytree(tiny_preset[0], folder)
    assert remeasure_check_nll.main([str(folder)]) == 0
    metadata = presets.verify_preset(folder)
    metrics = metadata["metrics"]
    assert metrics["check_nll"] == pytest.approx(tiny_preset[1], abs=1e-3)
    assert metrics["check_nll_images"] == CHECK_IMAGES
    assert metrics["test_nll"] == OLD_METRICS["test_nll"]  # headline figures untouched
    assert "it replaced 123.00 nats on 1000 random images" in metadata["check_nll_note"]
    assert f"-> {metrics['check_nll']:.3f} ({CHECK_IMAGES} images)" in capsys.readouterr().out
    # Again: the note keeps the one before.
    remeasure_check_nll.remeasure(str(folder))
    note = presets.verify_preset(folder)["check_nll_note"]
    assert note.count("re-measured from the shipped weights") == 2


def test_a_built_in_preset_is_registered_again(tiny_preset, tmp_path, monkeypatch):
    monkeypatch.setattr(presets, "zoo_dir", lambda: tmp_path)
    shutil.copytree(tiny_preset[0], tmp_path / "tiny_vae")
    (tmp_path / presets.REGISTRY_FILE).write_text(json.dumps({}))
    presets.register_builtin("tiny_vae")
    remeasure_check_nll.remeasure("tiny_vae")
    # Loads by name: the registry's hash is the new metadata's.
    model = kv.from_preset("tiny_vae")
    assert model.preset_metadata["metrics"]["check_nll_images"] == CHECK_IMAGES


def test_a_preset_without_a_check_figure_is_refused(tmp_path):
    model = kv.VAE(input_shape=(28, 28, 1), latent_dim=2, architecture="mlp", hidden_dims=(16,))
    presets.save_to_preset(
        model, tmp_path / "no_check", {"dataset": {"name": "binarized_mnist"}, "metrics": {}}
    )
    with pytest.raises(ValueError, match="stores no check_nll"):
        remeasure_check_nll.remeasure(str(tmp_path / "no_check"))
