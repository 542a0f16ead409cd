import keras
import numpy as np
import pytest
from keras import ops

from keras_vae.layers import MaskedConv2D
from tests.test_case import assert_config_round_trip

RNG = np.random.default_rng(0)


def _numpy_conv(x, kernel, bias):
    """'same' stride-1 cross-correlation of `(b, h, w, c)` with `(k, k, c, f)`."""
    k = kernel.shape[0]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],), "float64")
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            window = padded[:, i : i + k, j : j + k, :]
            out[:, i, j] = np.einsum("bhwc,hwcf->bf", window, kernel)
    return out + bias


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_output_matches_a_numpy_masked_convolution(mask_type):
    layer = MaskedConv2D(4, 5, mask_type=mask_type, bias_initializer="ones")
    x = RNG.normal(size=(2, 6, 7, 3)).astype("float32")
    y = ops.convert_to_numpy(layer(x))
    mask = np.zeros((5, 5), "float32")
    mask[:2] = 1.0
    mask[2, : 2 + (mask_type == "B")] = 1.0
    np.testing.assert_array_equal(layer.mask, mask)
    kernel = ops.convert_to_numpy(layer.kernel) * mask[:, :, None, None]
    np.testing.assert_allclose(y, _numpy_conv(x, kernel, 1.0), rtol=1e-4, atol=1e-4)


def test_a_stack_is_autoregressive_in_raster_order():
    """Output pixel p of an A, B, B stack depends on the input pixels before
    p in raster order only (checked by changing each pixel in turn)."""
    stack = keras.Sequential(
        [
            keras.Input((5, 5, 1)),
            MaskedConv2D(4, 3, mask_type="A"),
            MaskedConv2D(4, 3, mask_type="B", activation="tanh"),
            MaskedConv2D(1, 3, mask_type="B"),
        ]
    )
    x = RNG.normal(size=(1, 5, 5, 1)).astype("float32")
    base = ops.convert_to_numpy(stack(x)).reshape(25)
    for pixel in range(25):
        moved = x.copy().reshape(25)
        moved[pixel] += 10.0
        changed = ops.convert_to_numpy(stack(moved.reshape(1, 5, 5, 1))).reshape(25) != base
        assert not changed[: pixel + 1].any(), pixel
        # The receptive field reaches the next pixel of the same row.
        if pixel % 5 < 4:
            assert changed[pixel + 1], pixel


def test_config_and_keras_file_round_trip(tmp_path):
    layer = MaskedConv2D(2, 3, mask_type="A", activation="relu", name="pixel")
    clone = assert_config_round_trip(layer)
    np.testing.assert_array_equal(clone.mask, layer.mask)
    model = keras.Sequential([keras.Input((4, 4, 1)), layer])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = RNG.normal(size=(3, 4, 4, 1)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="positive odd"):
        MaskedConv2D(2, 4)
    with pytest.raises(ValueError, match="square"):
        MaskedConv2D(2, (3, 5))
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2D(2, 3, mask_type="C")
    with pytest.raises(ValueError, match="sees nothing"):
        MaskedConv2D(2, 1, mask_type="A")
    with pytest.raises(ValueError, match="padding"):
        MaskedConv2D(2, 3, padding="valid")
