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


def _grid_geometry(figure):
    """(rows, columns) of an `image_grid` figure."""
    return figure.axes[0].get_subplotspec().get_geometry()[:2]


def _cell(figure, row, column):
    columns = _grid_geometry(figure)[1]
    return np.asarray(figure.axes[row * columns + column].images[0].get_array())


@pytest.fixture(scope="module")
def hierarchical_model():
    return kv.HierarchicalVAE(
        input_shape=(8, 8, 1),
        latent_channels=(1, 1, 1),
        strides=(4, 4, 2),
        hidden_channels=4,
        seed=0,
    )


def test_plot_samples_at_temperature(hierarchical_model, tmp_path):
    path = tmp_path / "t.png"
    figure = plotting.plot_samples_at_temperature(
        hierarchical_model, 0.7, num_samples=6, seed=3, num_columns=3, path=path
    )
    assert _grid_geometry(figure) == (2, 3) and is_png(path)
    assert "temperature 0.7" in figure.texts[0].get_text()
    np.testing.assert_allclose(
        _cell(figure, 1, 2),
        np.clip(hierarchical_model.sample(6, temperature=0.7, seed=3)[5, ..., 0], 0, 1),
        atol=1e-6,
    )
    # The temperature reaches `sample`: at 0 every image is the prior mean.
    cold = plotting.plot_samples_at_temperature(hierarchical_model, 0.0, num_samples=4)
    np.testing.assert_allclose(_cell(cold, 0, 0), _cell(cold, 1, 1), atol=1e-6)
    warm = plotting.plot_samples_at_temperature(hierarchical_model, 1.0, num_samples=4)
    assert np.abs(_cell(warm, 0, 0) - _cell(warm, 1, 1)).max() > 1e-3


def test_plot_group_resampling(hierarchical_model, tmp_path):
    model = hierarchical_model
    x = np.random.default_rng(0).integers(0, 2, (2, 8, 8, 1)).astype("float32")
    path = tmp_path / "groups.png"
    figure = plotting.plot_group_resampling(
        model, x, num_draws=3, image_labels=["#7", "#2"], path=path
    )
    # One row per input and per number of fixed groups (1, 2 of 3); the
    # input, its reconstruction, then 3 draws.
    assert _grid_geometry(figure) == (4, 5) and is_png(path)
    labels = [a.get_ylabel() for a in figure.axes if a.get_ylabel()]
    assert labels == ["#7\ntop 1/3", "#7\ntop 2/3", "#2\ntop 1/3", "#2\ntop 2/3"]
    reconstructions = model.reconstruct(x)
    for row, image in enumerate((0, 0, 1, 1)):
        np.testing.assert_array_equal(_cell(figure, row, 0), x[image, ..., 0])
        np.testing.assert_allclose(
            _cell(figure, row, 1), reconstructions[image, ..., 0], atol=1e-5
        )
    # The lower groups are redrawn: the draws of a row differ.
    for row in range(4):
        assert np.abs(_cell(figure, row, 2) - _cell(figure, row, 3)).max() > 1e-4
    # The row with 2 fixed groups is model.decode of the top 2 groups.
    z_means, _ = model.encode(x)
    expected = model.decode([np.repeat(z, 3, axis=0) for z in z_means[:2]], seed=0)
    np.testing.assert_allclose(_cell(figure, 3, 4), expected[5, ..., 0], atol=1e-5)

    with pytest.raises(ValueError, match="image labels"):
        plotting.plot_group_resampling(model, x, image_labels=["a"])
    with pytest.raises(ValueError, match="num_draws"):
        plotting.plot_group_resampling(model, x, num_draws=0)
    one_group = kv.HierarchicalVAE(
        input_shape=(8, 8, 1), latent_channels=(1,), strides=(4,), hidden_channels=4, seed=0
    )
    with pytest.raises(ValueError, match="at least two latent groups, got 1"):
        plotting.plot_group_resampling(one_group, x)
