"""`keras-vae compress` and `keras-vae decompress`, called in-process."""

import numpy as np
import pytest
from PIL import Image

import keras_vae as kv
from keras_vae.cli import main


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("compression_cli") / "tiny.keras"
    kv.VAE(input_shape=(8, 8, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,)).save(path)
    return str(path)


def test_npy_round_trip_with_progress(model_file, tmp_path, capsys):
    images = np.random.default_rng(0).integers(0, 2, (5, 8, 8)).astype("float32")
    np.save(tmp_path / "in.npy", images)
    kvz, out = str(tmp_path / "in.kvz"), str(tmp_path / "out.npy")
    assert main(["compress", model_file, str(tmp_path / "in.npy"), kvz, "--batch-size", "2"]) == 0
    assert main(["decompress", model_file, kvz, out]) == 0
    np.testing.assert_array_equal(np.load(out), images[..., None])
    captured = capsys.readouterr()
    assert "compressed 5/5 images" in captured.err
    assert "decompressed 5/5 images" in captured.err
    assert "bits per pixel" in captured.out
    # An existing output is not replaced without --overwrite.
    assert main(["decompress", model_file, kvz, out]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["decompress", model_file, kvz, out, "--overwrite"]) == 0


def test_png_round_trip(model_file, tmp_path):
    pixels = np.random.default_rng(1).integers(0, 2, (8, 8)).astype(bool)
    Image.fromarray(pixels).save(tmp_path / "in.png")
    kvz, out = str(tmp_path / "in.kvz"), str(tmp_path / "out.png")
    assert main(["compress", model_file, str(tmp_path / "in.png"), kvz]) == 0
    assert main(["decompress", model_file, kvz, out]) == 0
    with Image.open(out) as image:
        np.testing.assert_array_equal(np.asarray(image.convert("L")) > 127, pixels)


def test_errors_are_one_line(model_file, tmp_path, capsys):
    grey = np.full((8, 8), 128, np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert main(["compress", model_file, str(tmp_path / "grey.png"), str(tmp_path / "g.kvz")]) == 2
    assert "not a black-and-white image" in capsys.readouterr().err
    (tmp_path / "bad.kvz").write_bytes(b"KVZ\x1a\x01" + bytes(100))
    assert main(["decompress", model_file, str(tmp_path / "bad.kvz"), str(tmp_path / "o.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-vae: error: The stream is") and "\n" not in err
    assert not (tmp_path / "o.npy").exists()


def test_hierarchical_vae_preset_folder_round_trip(tmp_path, capsys):
    from keras_vae import presets

    # One group: three compiled passes, loaded twice.
    model = kv.HierarchicalVAE(
        input_shape=(8, 8, 1), latent_channels=(1,), strides=(4,), hidden_channels=4, seed=0
    )
    folder = str(tmp_path / "tiny_hvae")
    presets.save_to_preset(model, folder)
    images = np.random.default_rng(2).integers(0, 2, (3, 8, 8, 1)).astype("uint8")
    np.save(tmp_path / "in.npy", images)
    kvz, out = str(tmp_path / "in.kvz"), str(tmp_path / "out.npy")
    assert main(["compress", folder, str(tmp_path / "in.npy"), kvz]) == 0
    assert main(["decompress", folder, kvz, out]) == 0
    np.testing.assert_array_equal(np.load(out), images)
    assert "compressed 3/3 images" in capsys.readouterr().err
