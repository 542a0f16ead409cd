import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import keras_vae as kv  # noqa: E402
from keras_vae import plotting  # noqa: E402


@pytest.fixture(scope="module")
def model_and_data():
    model = kv.VAE(
        input_shape=(12, 12, 1),
        latent_dim=3,
        architecture="mlp",
        hidden_dims=(16,),
        seed=0,
    )
    x = np.random.default_rng(0).random((10, 12, 12, 1)).astype("float32")
    return model, x


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_image_grid(tmp_path):
    path = tmp_path / "grid.png"
    figure = plotting.image_grid(np.ones((5, 8, 8)), num_columns=2, path=path)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 5
    assert is_png(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]
    rgb = plotting.image_grid(np.zeros((4, 8, 8, 3)))
    assert len(rgb.axes) == 4
    with pytest.raises(ValueError, match="shape"):
        plotting.image_grid(np.zeros((4, 8)))
    with pytest.raises(ValueError, match="row labels"):
        plotting.image_grid(
            np.zeros((4, 8, 8)), num_columns=2, row_labels=["a"]
        )
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plotting.image_grid(np.zeros((1, 8, 8)), path=tmp_path / "no" / "x.png")


def test_model_plots(model_and_data, tmp_path):
    model, x = model_and_data
    figure = plotting.plot_reconstructions(
        model, x[:4], path=tmp_path / "r.png"
    )
    assert len(figure.axes) == 8 and is_png(tmp_path / "r.png")

    figure = plotting.plot_interpolation(model, x[0], x[1], steps=5)
    assert len(figure.axes) == 7
    with pytest.raises(ValueError, match="steps"):
        plotting.plot_interpolation(model, x[0], x[1], steps=1)
    with pytest.raises(ValueError, match="one example"):
        plotting.plot_interpolation(model, x[:2], x[1])

    figure = plotting.plot_latent_traversal(model, x, values=[-2, 0, 2])
    assert len(figure.axes) == 3 * 3  # one row per latent (3), 3 values
    labels = [a.get_ylabel() for a in figure.axes if a.get_ylabel()]
    kls = [float(label.split()[-1]) for label in labels]
    assert kls == sorted(kls, reverse=True)
    figure = plotting.plot_latent_traversal(model, x, dims=[2], values=[0, 1])
    assert len(figure.axes) == 2
    with pytest.raises(ValueError, match="dims"):
        plotting.plot_latent_traversal(model, x, dims=[5])

    figure = plotting.plot_latent_scatter(
        model, x, labels=np.arange(10) % 3, path=tmp_path / "s.png"
    )
    assert figure.axes[0].get_xlabel() == "PC 1" and is_png(tmp_path / "s.png")
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_latent_scatter(model, x, labels=[1, 2])

    figure = plotting.plot_samples(model, num_samples=4, seed=1)
    assert len(figure.axes) == 4


def test_saved_figures_get_the_umask_mode_not_0600(tmp_path):
    # Written through a mkstemp file (0600) and renamed: the PNG must have
    # the mode any other file gets (0644 under umask 022).
    import os

    old = os.umask(0o022)
    try:
        path = tmp_path / "grid.png"
        plotting.image_grid(np.ones((2, 8, 8)), path=path)
        assert path.stat().st_mode & 0o777 == 0o644
        os.umask(0o027)
        plotting.image_grid(np.ones((2, 8, 8)), path=path)
        assert path.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
