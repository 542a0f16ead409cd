import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import keras_vae as kv  # noqa: E402


def test_saves_png_every_n_epochs(tmp_path):
    model = kv.VAE(
        input_shape=(8, 8, 1),
        latent_dim=2,
        architecture="mlp",
        hidden_dims=(8,),
        seed=0,
    )
    model.compile(optimizer="adam")
    x = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    directory = tmp_path / "grids"
    grid = kv.callbacks.SampleGrid(directory, every_n_epochs=2, num_samples=4)
    model.fit(x, epochs=5, batch_size=8, verbose=0, callbacks=[grid])
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["samples_epoch_0002.png", "samples_epoch_0004.png"]
    for name in names:
        assert (directory / name).read_bytes()[:4] == b"\x89PNG"


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="every_n_epochs"):
        kv.callbacks.SampleGrid(tmp_path, every_n_epochs=0)
    with pytest.raises(ValueError, match="num_samples"):
        kv.callbacks.SampleGrid(tmp_path, num_samples=0)
