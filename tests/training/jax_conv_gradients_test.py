"""The JAX train step's `conv` and `conv_transpose` with matmul kernel
gradients (`keras_vae.training.jax_conv_gradients`): same forward and
gradients as Keras' ops on JAX, a no-op on TensorFlow and torch."""

import keras
import numpy as np
import pytest
from keras.src.backend import nn as backend_nn

from keras_vae.models import VAE
from keras_vae.training import jax_conv_gradients as conv_gradients

BACKEND = keras.backend.backend()

# (inputs shape without batch/channels, kernel size, strides, padding,
# output_padding, data_format): strides 1/2, kernels 2/3/4, both paddings,
# output_padding, odd sizes, 1D and 3D, both data formats.
TRANSPOSE_CASES = [
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

# (inputs shape without batch/channels, kernel size, strides, padding,
# data_format, (channels in, channels out)): the windows of the inputs
# (strides > 1, or more output channels) and of the output gradient
# (stride 1, fewer output channels: a 1-channel output layer).
CONV_CASES = [
    ((8, 8), 2, 1, "same", "channels_last", (3, 8)),  # the sub-pixel decoder's 2x2 conv
    ((7, 7), 3, 2, "same", "channels_last", (1, 4)),  # ARCH's encoder
    ((6, 6), 3, 2, "same", "channels_first", (3, 4)),  # even input, stride 2: uneven padding
    ((5, 6), 3, 1, "same", "channels_last", (4, 1)),  # ARCH's output layer: windows of dy
    ((5, 4), (3, 2), (2, 1), "valid", "channels_first", (3, 2)),
    ((6, 5), 4, 1, "same", "channels_first", (4, 2)),  # even kernel, windows of dy
    ((4, 4), 1, 1, "valid", "channels_last", (3, 2)),
    ((9,), 3, 3, "valid", "channels_last", (2, 3)),
    ((7,), 4, 1, "same", "channels_first", (3, 1)),
    ((3, 4, 3), 3, 2, "same", "channels_last", (2, 3)),
    ((3, 3, 4), 2, 1, "valid", "channels_first", (3, 2)),
]


def ops():
    return backend_nn.conv, backend_nn.conv_transpose


def test_swap_is_scoped_and_only_on_jax():
    original = ops()
    with conv_gradients.fast_conv_gradients():
        inside = ops()
        with conv_gradients.fast_conv_gradients():  # nesting keeps the outer swap
            assert ops() == inside
    assert ops() == original
    for op in inside:
        if BACKEND == "jax":
            assert getattr(op, "has_fast_kernel_gradient", False)
        else:
            assert op in original
    with pytest.raises(RuntimeError, match="restored"):
        with conv_gradients.fast_conv_gradients():
            raise RuntimeError("restored")
    assert ops() == original


def inputs_and_kernel(rng, spatial, kernel_size, data_format, channels_in, kernel_channels):
    """Random float32 inputs (batch 2) and a kernel of shape
    `(*kernel_size, *kernel_channels)`."""
    if data_format == "channels_last":
        x_shape = (2, *spatial, channels_in)
    else:
        x_shape = (2, channels_in, *spatial)
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size,) * len(spatial)
    x = rng.standard_normal(x_shape).astype("float32")
    return x, rng.standard_normal((*kernel_size, *kernel_channels)).astype("float32")


def assert_forward_is_keras_own(op, reference, *args):
    """On JAX, `op` (a `keras.ops` convolution) inside `fast_conv_gradients()`
    gives Keras' JAX op's outputs, `reference`, exactly. On TensorFlow and
    torch the swap changes nothing (`test_swap_is_scoped_and_only_on_jax`);
    their ops are not called here: TensorFlow's CPU kernels refuse
    `channels_first` where oneDNN is off (AMD CPUs)."""
    if BACKEND != "jax":
        return
    with conv_gradients.fast_conv_gradients():
        outputs = keras.ops.convert_to_numpy(op(*args))
    np.testing.assert_array_equal(outputs, reference)


def assert_vjps_match(original, fast, x, kernel, dy):
    """Under differentiation, the outputs and the input and kernel
    gradients of `fast` equal `original`'s (JAX's autodiff of Keras' JAX
    op) to 1e-5 of their scale (a strided `conv` computes its forward from
    its windows there)."""
    import jax

    original_y, original_vjp = jax.vjp(original, x, kernel)
    fast_y, fast_vjp = jax.vjp(fast, x, kernel)
    pairs = zip(
        ("outputs", "inputs", "kernel"),
        (original_y, *original_vjp(dy)),
        (fast_y, *fast_vjp(dy)),
    )
    for name, expected, got in pairs:
        expected, got = np.asarray(expected), np.asarray(got)
        assert got.shape == expected.shape, name
        scale = np.max(np.abs(expected))
        assert scale > 0, name
        np.testing.assert_allclose(got / scale, expected / scale, rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[str(i) for i in range(len(TRANSPOSE_CASES))])
def test_conv_transpose_gradients_match_keras_op(case):
    spatial, kernel_size, strides, padding, output_padding, data_format = case
    rng = np.random.default_rng(0)
    # Keras' conv_transpose kernel is (*kernel_size, out, in).
    x, kernel = inputs_and_kernel(rng, spatial, kernel_size, data_format, 3, (2, 3))
    args = (strides, padding, output_padding, data_format)
    # The gradients are JAX's, whatever the Keras backend: checked on all.
    from keras.src.backend.jax import nn as jax_nn

    reference = np.asarray(jax_nn.conv_transpose(x, kernel, *args))
    assert_forward_is_keras_own(keras.ops.conv_transpose, reference, x, kernel, *args)
    dy = rng.standard_normal(reference.shape).astype("float32")
    _, fast = conv_gradients.with_fast_kernel_gradients(conv_transpose=jax_nn.conv_transpose)
    assert_vjps_match(
        lambda x, k: jax_nn.conv_transpose(x, k, *args),
        lambda x, k: fast(x, k, *args),
        x,
        kernel,
        dy,
    )


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv_gradients_match_keras_op(case):
    spatial, kernel_size, strides, padding, data_format, (channels_in, channels_out) = case
    rng = np.random.default_rng(1)
    x, kernel = inputs_and_kernel(
        rng, spatial, kernel_size, data_format, channels_in, (channels_in, channels_out)
    )
    args = (strides, padding, data_format)
    from keras.src.backend.jax import nn as jax_nn

    reference = np.asarray(jax_nn.conv(x, kernel, *args))
    assert_forward_is_keras_own(keras.ops.conv, reference, x, kernel, *args)
    dy = rng.standard_normal(reference.shape).astype("float32")
    fast, _ = conv_gradients.with_fast_kernel_gradients(conv=jax_nn.conv)
    assert_vjps_match(
        lambda x, k: jax_nn.conv(x, k, *args), lambda x, k: fast(x, k, *args), x, kernel, dy
    )


def test_untested_cases_keep_keras_op():
    """Dilation, groups and bfloat16 are not derived here: Keras' op runs as is."""
    import jax.numpy as jnp

    x = jnp.ones((1, 3, 3, 2), "float32")
    kernel = jnp.ones((3, 3, 2, 2), "float32")
    bf16 = (jnp.asarray(x, "bfloat16"), jnp.asarray(kernel, "bfloat16"))
    plan = conv_gradients._conv_transpose_plan
    assert plan(x, kernel, 1, "same", None, None, 1) is not None
    assert plan(x, kernel, 1, "same", None, None, 2) is None
    assert plan(*bf16, 1, "same", None, None, 1) is None
    plan = conv_gradients._conv_plan
    assert plan(x, kernel, 1, "same", None, 1) is not None
    assert plan(x, kernel, 1, "same", None, 2) is None
    assert plan(*bf16, 1, "same", None, 1) is None
    assert plan(x, kernel[:, :, :1], 1, "same", None, 1) is None  # two groups


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
    gradients = {}
    for name in ("_conv_kernel_gradient", "_conv_transpose_gradients"):
        gradients[name] = getattr(conv_gradients, name)

        def counting(*args, name=name):
            calls.append(name)
            return gradients[name](*args)

        monkeypatch.setattr(conv_gradients, name, counting)
    weights = {}
    initial = None
    for flag in ("0", "1"):
        monkeypatch.setenv(conv_gradients.FAST_CONV_GRADIENTS_ENV, flag)
        model = transpose_vae()
        model(x[:1])
        if initial is None:
            initial = model.get_weights()
        model.set_weights(initial)
        model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
        weights[flag] = model.get_weights()
        if flag == "0":
            assert not calls
    # The swap ran on JAX (the Conv2DTranspose and the Conv2D, traced once), nowhere else.
    assert sorted(calls) == (sorted(gradients) if BACKEND == "jax" else [])
    assert (backend_nn.conv.__name__, backend_nn.conv_transpose.__name__) == (
        "conv",
        "conv_transpose",
    )
    moved = [not np.allclose(a, b) for a, b in zip(initial, weights["1"])]
    assert any(moved)
    for slow, fast in zip(weights["0"], weights["1"]):
        np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
