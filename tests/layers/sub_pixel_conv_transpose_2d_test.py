import keras
import numpy as np
import pytest
from keras import ops

from keras_vae.layers import SubPixelConvTranspose2D
from tests.test_case import assert_config_round_trip, assert_saved_model_round_trip


def _random_weights(layer, rng):
    layer.set_weights([rng.standard_normal(w.shape).astype("float32") for w in layer.weights])


@pytest.mark.parametrize("use_bias", [True, False])
def test_matches_conv2d_transpose_with_the_same_weights(use_bias):
    """Exactly `Conv2DTranspose(f, 3, strides=2, padding="same")`, on a
    non-square grid, with the weights copied over unchanged."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 6, 3)).astype("float32")
    reference = keras.layers.Conv2DTranspose(
        4, 3, strides=2, padding="same", activation="tanh", use_bias=use_bias
    )
    reference.build(x.shape)
    _random_weights(reference, rng)
    layer = SubPixelConvTranspose2D(4, activation="tanh", use_bias=use_bias)
    layer.build(x.shape)
    assert [tuple(w.shape) for w in layer.weights] == [
        tuple(w.shape) for w in reference.weights
    ]
    layer.set_weights(reference.get_weights())
    expected = ops.convert_to_numpy(reference(x))
    actual = ops.convert_to_numpy(layer(x))
    assert actual.shape == (2, 10, 12, 4)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    # Every phase and tap matters: a changed corner tap changes the outputs.
    weights = layer.get_weights()
    weights[0][2, 2] += 1.0
    layer.set_weights(weights)
    assert not np.allclose(ops.convert_to_numpy(layer(x)), expected, atol=1e-3)


def test_initializes_as_conv2d_transpose():
    """Same kernel shape and fans, so the default initializer draws the
    same values as Conv2DTranspose's from the same seed."""
    init = {"class_name": "GlorotUniform", "config": {"seed": 3}}
    reference = keras.layers.Conv2DTranspose(
        8, 3, strides=2, padding="same", kernel_initializer=init
    )
    reference.build((None, 4, 4, 16))
    layer = SubPixelConvTranspose2D(8, kernel_initializer=init)
    layer.build((None, 4, 4, 16))
    np.testing.assert_array_equal(
        ops.convert_to_numpy(layer.kernel), ops.convert_to_numpy(reference.kernel)
    )


def test_trains_and_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 3, 3, 2)).astype("float32")
    inputs = keras.Input((3, 3, 2))
    model = keras.Model(inputs, SubPixelConvTranspose2D(2, activation="relu")(inputs))
    model.compile(optimizer="sgd", loss="mse")
    before = ops.convert_to_numpy(model.layers[-1].kernel).copy()
    model.fit(x, np.ones((8, 6, 6, 2), "float32"), epochs=1, batch_size=4, verbose=0)
    assert not np.allclose(ops.convert_to_numpy(model.layers[-1].kernel), before)
    assert_saved_model_round_trip(model, x, "predict", tmp_path)
    clone = assert_config_round_trip(SubPixelConvTranspose2D(5, activation="relu", use_bias=False))
    assert (clone.filters, clone.use_bias) == (5, False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="`filters` must be a positive int"):
        SubPixelConvTranspose2D(0)
    with pytest.raises(ValueError, match="channels-last images"):
        SubPixelConvTranspose2D(2)(np.zeros((1, 4, 4), "float32"))
