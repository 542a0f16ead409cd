"""The matmul form of narrow convolutions (keras_vae/training/narrow_conv.py)."""

import keras
import numpy as np
import pytest
from keras import ops
from keras.src.backend import nn as backend_nn

from keras_vae.training import narrow_conv


def value_and_gradients(x, kernel, upstream, padding, narrow):
    """`sum(conv(x, kernel) * upstream)` and its gradients with respect to
    `x` and `kernel`, on this backend, with or without `narrow_convs`."""

    def loss(x, kernel):
        if narrow:
            with narrow_conv.narrow_convs():
                y = ops.conv(x, kernel, 1, padding)
        else:
            y = ops.conv(x, kernel, 1, padding)
        return ops.sum(y * upstream)

    backend = keras.backend.backend()
    x, kernel = ops.convert_to_tensor(x), ops.convert_to_tensor(kernel)
    if backend == "jax":
        import jax

        value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, kernel)
    elif backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def step(x, kernel):
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                value = loss(x, kernel)
            return value, tape.gradient(value, [x, kernel])

        value, grads = step(x, kernel)
    else:
        x, kernel = x.detach().requires_grad_(), kernel.detach().requires_grad_()
        value = loss(x, kernel)
        value.backward()
        grads = (x.grad, kernel.grad)
    return [np.asarray(ops.convert_to_numpy(t)) for t in (value, *grads)]


@pytest.mark.parametrize(
    "x_shape, kernel_shape, padding",
    [
        ((3, 9, 7, 32), (3, 3, 32, 1), "same"),  # a decoder's Bernoulli logits
        ((2, 8, 8, 16), (3, 3, 16, 1), "valid"),
        ((2, 6, 5, 12), (1, 3, 12, 2), "same"),
        ((2, 6, 6, 20), (2, 2, 20, 4), "same"),  # even kernel: asymmetric padding
        ((1, 5, 5, 9), (3, 3, 9, 1), "same"),  # 9 taps x 1 channel = 9 inputs: the limit
    ],
)
def test_the_matmul_form_equals_keras_convolution_and_its_gradients(
    x_shape, kernel_shape, padding
):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype("float32")
    kernel = rng.standard_normal(kernel_shape).astype("float32")
    out_shape = tuple(
        ops.shape(ops.conv(ops.convert_to_tensor(x), ops.convert_to_tensor(kernel), 1, padding))
    )
    upstream = ops.convert_to_tensor(rng.standard_normal(out_shape).astype("float32"))
    expected = value_and_gradients(x, kernel, upstream, padding, narrow=False)
    got = value_and_gradients(x, kernel, upstream, padding, narrow=True)
    for name, a, b in zip(("value", "input gradient", "kernel gradient"), got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=name)


def test_only_narrow_stride_1_float32_convolutions_take_the_matmul_form():
    calls = []

    def original(*args):
        calls.append(args)
        return "keras"

    fast = narrow_conv.with_narrow_matmul(original)
    rng = np.random.default_rng(0)
    x = ops.convert_to_tensor(rng.random((1, 6, 6, 12), dtype="float32"))
    narrow = ops.convert_to_tensor(rng.random((3, 3, 12, 1), dtype="float32"))  # 9 <= 12
    assert not isinstance(fast(x, narrow, 1, "same"), str) and not calls
    wide = ops.convert_to_tensor(rng.random((3, 3, 12, 2), dtype="float32"))  # 18 > 12
    for args in [
        (x, wide, 1, "same"),
        (x, narrow, 2, "same"),
        (x, narrow, 1, "same", "channels_last", 2),
        (ops.cast(x, "float16"), ops.cast(narrow, "float16"), 1, "same"),
        (ops.convert_to_tensor(rng.random((1, 6, 12), dtype="float32")),
         ops.convert_to_tensor(rng.random((3, 12, 1), dtype="float32")), 1, "same"),
    ]:
        assert isinstance(fast(*args), str)
    assert len(calls) == 5


def test_narrow_convs_swaps_once_and_restores(monkeypatch):
    original = backend_nn.conv
    with narrow_conv.narrow_convs():
        swapped = backend_nn.conv
        assert swapped is not original
        with narrow_conv.narrow_convs():
            assert backend_nn.conv is swapped
    assert backend_nn.conv is original
    monkeypatch.setenv(narrow_conv.NARROW_CONV_ENV, "0")
    with narrow_conv.narrow_convs():
        assert backend_nn.conv is original


def test_the_tensorflow_and_jax_train_steps_use_the_matmul_form(monkeypatch):
    used = []
    matmul_conv = narrow_conv._matmul_conv

    def spy(*args):
        used.append(tuple(args[1].shape))
        return matmul_conv(*args)

    monkeypatch.setattr(narrow_conv, "_matmul_conv", spy)
    import keras_vae as kv

    model = kv.VAE(input_shape=(28, 28, 1), latent_dim=2, seed=0)
    model.compile(optimizer="adam")
    model.fit(np.zeros((4, 28, 28, 1), "float32"), epochs=1, batch_size=4, verbose=0)
    if keras.backend.backend() == "torch":
        assert used == []  # torch's step keeps Keras' op (no gain measured)
    else:
        # The default decoder's output layer (to 1 channel), traced once.
        assert len(used) == 1 and used[0][:2] == (3, 3) and used[0][-1] == 1
