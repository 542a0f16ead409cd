"""The JAX train step's `conv_transpose` with a patches-times-matmul kernel
gradient (`keras_vae.training.jax.fast_conv_transpose`): same forward and
gradients as Keras' op on JAX, a no-op on TensorFlow and torch."""

import keras
import numpy as np
import pytest
from keras.src.backend import nn as backend_nn

from keras_vae.models import VAE
from keras_vae.training import jax as jax_training

BACKEND = keras.backend.backend()

# (inputs shape without batch/channels, kernel size, strides, padding,
# output_padding, data_format): strides 1/2, kernels 2/3/4, both paddings,
# output_padding, odd sizes, 1D and 3D, both data formats.
CASES = [
    ((7, 7), 3, 2, "same", None, "channels_last"),  # ARCH's layers
    ((5, 3), 3, 2, "valid", None, "channels_last"),
    ((4, 5), 2, 2, "same", None, "channels_first"),
    ((3, 4), 4, 2, "same", 1, "channels_last"),
    ((5, 4), 4, 2, "valid", 1, "channels_first"),
    ((5, 5), 3, 1, "same", None, "channels_first"),
    ((3, 6), 2, 1, "valid", None, "channels_last"),
    ((4, 3), (3, 2), (2, 1), "valid", (1, 0), "channels_last"),
    ((5,), 4, 3, "valid", 2, "channels_last"),
    ((6,), 3, 2, "same", 0, "channels_first"),
    ((3, 2, 3), 3, 2, "same", None, "channels_last"),
    ((2, 3, 2), 2, 2, "valid", 1, "channels_first"),
]


def test_swap_is_scoped_and_only_on_jax():
    original = backend_nn.conv_transpose
    with jax_training.fast_conv_transpose():
        inside = backend_nn.conv_transpose
        with jax_training.fast_conv_transpose():  # nesting keeps the outer swap
            assert backend_nn.conv_transpose is inside
    assert backend_nn.conv_transpose is original
    if BACKEND == "jax":
        assert getattr(inside, "is_fast_conv_transpose", False)
    else:
        assert inside is original
    with pytest.raises(RuntimeError, match="restored"):
        with jax_training.fast_conv_transpose():
            raise RuntimeError("restored")
    assert backend_nn.conv_transpose is original


@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_gradients_match_keras_op(case):
    spatial, kernel_size, strides, padding, output_padding, data_format = case
    rng = np.random.default_rng(0)
    channels_in, channels_out = 3, 2
    if data_format == "channels_last":
        x_shape = (2, *spatial, channels_in)
    else:
        x_shape = (2, channels_in, *spatial)
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size,) * len(spatial)
    x = rng.standard_normal(x_shape).astype("float32")
    kernel = rng.standard_normal((*kernel_size, channels_out, channels_in)).astype("float32")
    args = (strides, padding, output_padding, data_format)
    reference = keras.ops.convert_to_numpy(keras.ops.conv_transpose(x, kernel, *args))
    with jax_training.fast_conv_transpose():
        outputs = keras.ops.convert_to_numpy(keras.ops.conv_transpose(x, kernel, *args))
    np.testing.assert_array_equal(outputs, reference)  # the forward is Keras' own
    # The gradients are JAX's, whatever the Keras backend: checked on all.
    import jax
    from keras.src.backend.jax import nn as jax_nn

    dy = rng.standard_normal(reference.shape).astype("float32")
    original = jax_nn.conv_transpose
    fast = jax_training.with_fast_kernel_gradient(original)
    _, original_vjp = jax.vjp(lambda x, k: original(x, k, *args), x, kernel)
    _, fast_vjp = jax.vjp(lambda x, k: fast(x, k, *args), x, kernel)
    for name, expected, got in zip(("inputs", "kernel"), original_vjp(dy), fast_vjp(dy)):
        expected, got = np.asarray(expected), np.asarray(got)
        assert got.shape == expected.shape, name
        scale = np.max(np.abs(expected))
        assert scale > 0, name
        np.testing.assert_allclose(got / scale, expected / scale, rtol=0, atol=1e-5, err_msg=name)


def test_untested_cases_keep_keras_op():
    """Dilation and bfloat16 are not derived here: Keras' op runs as is."""
    import jax.numpy as jnp

    x = np.ones((1, 3, 3, 2), "float32")
    kernel = np.ones((3, 3, 2, 2), "float32")
    plan = jax_training._kernel_gradient_plan
    assert plan(jnp.asarray(x), jnp.asarray(kernel), 1, "same", None, None, 1) is not None
    assert plan(jnp.asarray(x), jnp.asarray(kernel), 1, "same", None, None, 2) is None
    bf16 = jnp.asarray(x, "bfloat16")
    assert plan(bf16, jnp.asarray(kernel, "bfloat16"), 1, "same", None, None, 1) is None


def transpose_vae():
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    decoder = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(4 * 4 * 4, activation="relu"),
            keras.layers.Reshape((4, 4, 4)),
            keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2D(1, 3, padding="same"),
        ]
    )
    model = VAE(input_shape=(8, 8, 1), latent_dim=2, encoder=encoder, decoder=decoder, seed=0)
    # SGD: a wrong gradient scale would move the weights (Adam's would not).
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def test_vae_trains_the_same_with_and_without_swap(monkeypatch):
    x = (np.random.default_rng(0).random((16, 8, 8, 1)) < 0.5).astype("float32")
    calls = []
    kernel_gradient = jax_training._patches_kernel_gradient

    def counting(*args):
        calls.append(1)
        return kernel_gradient(*args)

    monkeypatch.setattr(jax_training, "_patches_kernel_gradient", counting)
    weights = {}
    initial = None
    for flag in ("0", "1"):
        monkeypatch.setenv(jax_training.FAST_CONV_TRANSPOSE_ENV, flag)
        model = transpose_vae()
        model(x[:1])
        if initial is None:
            initial = model.get_weights()
        model.set_weights(initial)
        model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
        weights[flag] = model.get_weights()
        if flag == "0":
            assert not calls
    # The swap ran on JAX (the one Conv2DTranspose, traced once), nowhere else.
    assert bool(calls) == (BACKEND == "jax")
    assert backend_nn.conv_transpose.__name__ == "conv_transpose"
    moved = [not np.allclose(a, b) for a, b in zip(initial, weights["1"])]
    assert any(moved)
    for slow, fast in zip(weights["0"], weights["1"]):
        np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
