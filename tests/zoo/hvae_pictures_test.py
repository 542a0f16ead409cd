"""The pictures of a HierarchicalVAE preset (issue 21 part 6): the runner's
hook (`ImageVAE.pictures`) and `python -m zoo.hvae_pictures` on a tiny
preset folder, with the grids' shapes and the test images they show."""

import json

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_vae as kv  # noqa: E402
from keras_vae import plotting, presets  # noqa: E402
from keras_vae.runner.families import ImageVAE, image_vae  # noqa: E402
from zoo import hvae_pictures  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = ["group_resampling.png", "samples_t0.7.png", "samples_t1.0.png"]


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    """A 28x28 HierarchicalVAE of three tiny groups saved as a preset
    folder whose metadata names the binarized MNIST test split. Untrained:
    the pictures' shapes and files do not depend on the weights, and a
    `fit` would cost most of this file's time (JAX compiles the step)."""
    keras.utils.set_random_seed(0)
    model = kv.HierarchicalVAE(
        input_shape=(28, 28, 1),
        latent_channels=(1, 1, 1),
        strides=(4, 4, 2),
        hidden_channels=4,
        seed=0,
    )
    folder = tmp_path_factory.mktemp("presets") / "tiny_hvae"
    recipe = {"dataset": "binarized_mnist", "splits": {"test": "test"}}
    presets.save_to_preset(model, folder, {"recipe": recipe})
    return model, folder


@pytest.fixture
def few_pictures(monkeypatch):
    """Smaller grids (matplotlib takes seconds per hundred cells), and the
    shape of every grid written: file name -> (rows, columns)."""
    monkeypatch.setattr(image_vae, "PICTURE_SAMPLES", 6)
    monkeypatch.setattr(image_vae, "PICTURE_IMAGES", 2)
    monkeypatch.setattr(image_vae, "PICTURE_DRAWS", 3)
    shapes = {}
    save = plotting.save_figure

    def recording_save(figure, path, dpi=100):
        shapes[path.name] = figure.axes[0].get_subplotspec().get_geometry()[:2]
        return save(figure, path, dpi)

    monkeypatch.setattr(plotting, "save_figure", recording_save)
    return shapes


def test_the_runner_writes_the_pictures_of_a_hierarchical_preset(
    tiny_preset, few_pictures, tmp_path
):
    model, _ = tiny_preset
    x_test = np.random.default_rng(1).integers(0, 2, (50, 28, 28, 1)).astype("float32")
    paths = ImageVAE().pictures(model, tmp_path, {"test": x_test}, None)
    assert sorted(p.name for p in paths) == NAMES
    assert all(p.read_bytes()[:8] == PNG for p in paths)
    described = image_vae.hierarchy_pictures_metadata(model, len(x_test))
    # 6 samples in a 3x3 grid; 2 images x 2 numbers of fixed groups (of 3)
    # rows of the image, its reconstruction and 3 draws.
    assert few_pictures == {
        "samples_t1.0.png": (2, 3),
        "samples_t0.7.png": (2, 3),
        "group_resampling.png": (4, 5),
    }
    assert [s["file"] for s in described["samples"]] == ["samples_t1.0.png", "samples_t0.7.png"]
    assert [s["temperature"] for s in described["samples"]] == [1.0, 0.7]
    assert [tuple(s["grid"]) for s in described["samples"]] == [(2, 3), (2, 3)]
    groups = described["group_resampling"]
    assert tuple(groups["grid"]) == few_pictures["group_resampling.png"]
    # Random test images, never a prefix of the digit-sorted test file.
    expected = np.random.default_rng(0).choice(50, 2, replace=False).tolist()
    assert groups["test_indices"] == expected and expected != [0, 1]
    json.dumps(described)  # goes into metadata.json
    # A VAE preset gets no pictures from this hook.
    vae = kv.VAE(input_shape=(28, 28, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,))
    assert ImageVAE().pictures(vae, tmp_path, {"test": x_test}, None) == []


def test_hvae_pictures_command_writes_into_the_preset_folder(
    tiny_preset, few_pictures, tmp_path, capsys
):
    model, folder = tiny_preset
    assert hvae_pictures.main([str(folder)]) == 0
    written = sorted(p.name for p in folder.glob("*.png"))
    assert written == NAMES
    assert all((folder / name).read_bytes()[:8] == PNG for name in NAMES)
    assert set(few_pictures) == set(NAMES) and few_pictures["group_resampling.png"] == (4, 5)
    # The preset's hashed files are untouched: it still loads.
    presets.from_preset(folder)
    out = tmp_path / "elsewhere"
    assert hvae_pictures.main([str(folder), "--output-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == NAMES
    capsys.readouterr()
    # A preset that is not trained yet: a message, status 1.
    assert hvae_pictures.main(["no_such_hvae_preset"]) == 1
    assert "no_such_hvae_preset is not trained yet" in capsys.readouterr().err
    vae_folder = tmp_path / "vae"
    presets.save_to_preset(
        kv.VAE(input_shape=(28, 28, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,)),
        vae_folder,
    )
    with pytest.raises(SystemExit):
        hvae_pictures.main([str(vae_folder)])
    assert "is a VAE, not a HierarchicalVAE" in capsys.readouterr().err
