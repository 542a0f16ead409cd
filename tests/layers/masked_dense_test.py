import keras
import numpy as np
import pytest
from keras import ops

from keras_vae.layers import MaskedDense
from tests.test_case import assert_config_round_trip

RNG = np.random.default_rng(0)


def test_mask_follows_the_degrees_and_output_matches_numpy():
    inputs, outputs = [3, 1, 2], [1, 2, 2, 3, 0]
    layer = MaskedDense(inputs, outputs, activation="tanh", bias_initializer="ones")
    x = RNG.normal(size=(4, 3)).astype("float32")
    y = ops.convert_to_numpy(layer(x))
    expected_mask = np.array([[o >= i for o in outputs] for i in inputs], "float32")
    np.testing.assert_array_equal(layer.mask, expected_mask)
    kernel = ops.convert_to_numpy(layer.kernel)
    np.testing.assert_allclose(y, np.tanh(x @ (kernel * expected_mask) + 1.0), rtol=1e-5, atol=1e-6)
    strict = MaskedDense(inputs, outputs, strict=True)
    np.testing.assert_array_equal(
        strict.mask, np.array([[o > i for o in outputs] for i in inputs], "float32")
    )


def test_masked_inputs_do_not_reach_the_output():
    layer = MaskedDense([1, 2, 3], [1, 2, 3], strict=True)
    x = RNG.normal(size=(2, 3)).astype("float32")
    moved = x.copy()
    moved[:, 2] += 100.0  # Degree 3 feeds no output under a strict mask.
    np.testing.assert_array_equal(
        ops.convert_to_numpy(layer(x)), ops.convert_to_numpy(layer(moved))
    )


def test_config_and_keras_file_round_trip(tmp_path):
    layer = MaskedDense([1, 2], [2, 1, 1], strict=True, activation="elu", name="made")
    clone = assert_config_round_trip(layer)
    np.testing.assert_array_equal(clone.mask, layer.mask)
    model = keras.Sequential([keras.Input((2,)), layer])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    x = RNG.normal(size=(3, 2)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_bad_degrees_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="input_degrees"):
        MaskedDense([], [1])
    with pytest.raises(ValueError, match="output_degrees"):
        MaskedDense([1], [[1, 2]])
    with pytest.raises(ValueError, match="2 input degrees"):
        MaskedDense([1, 2], [1])(np.zeros((1, 3), "float32"))
