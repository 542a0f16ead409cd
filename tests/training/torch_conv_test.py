"""The copy-free channels-last `conv` / `conv_transpose` that
`keras_vae.training.torch` puts into Keras' torch backend: the same
forward and gradients as Keras' own functions, the inputs handed to torch
without a copy, installed once and only into the torch backend.

The comparisons call Keras' torch backend module directly on torch
tensors, so they run whatever KERAS_BACKEND is; under TensorFlow and JAX
the tests also check that the active backend's convolution is Keras' own.
"""

import keras
import numpy as np
import pytest
import torch
from keras.src.backend import nn as backend_nn
from keras.src.backend.torch import nn as torch_nn

from keras_vae.training import torch as torch_training

BACKEND = keras.backend.backend()

# (batch, spatial, channels in, kernel size, filters, strides, padding,
# dilation, groups)
CONV_CASES = [
    (2, (6, 7), 4, 3, 5, 1, "same", 1, 1),
    (2, (6, 6), 4, 3, 5, 2, "same", 1, 1),  # asymmetric: stride 2, even input
    (2, (5, 6), 4, 2, 3, 1, "same", 1, 1),  # asymmetric: even kernel
    (2, (7, 6), 4, 3, 3, 2, "valid", 1, 1),
    (2, (6, 6), 4, 3, 6, 1, "same", 1, 2),  # groups
    (2, (7, 7), 4, 3, 3, 1, "same", 2, 1),  # dilation
    (2, (6, 6), 4, 3, 1, 1, "same", 1, 1),  # one filter
    (1, (6, 6), 4, 3, 3, 2, "same", 1, 1),  # batch of one
    (2, (8,), 3, 3, 4, 2, "same", 1, 1),  # 1D, asymmetric
    (2, (9,), 4, 4, 2, 1, "valid", 1, 2),
    (1, (6,), 3, 2, 1, 1, "same", 1, 1),
    (2, (4, 5, 4), 2, 3, 3, 2, "same", 1, 1),  # 3D
]

# (batch, spatial, channels in, kernel size, filters, strides, padding,
# output_padding)
TRANSPOSE_CASES = [
    (2, (7, 7), 4, 3, 5, 2, "same", None),  # ARCH's layers
    (2, (5, 4), 3, 3, 2, 2, "valid", None),
    (2, (3, 4), 3, 4, 2, 2, "same", 1),
    (1, (4, 4), 3, 3, 1, 1, "same", None),
    (2, (5,), 3, 3, 2, 2, "same", None),
]


def _tensor(rng, shape, dtype=torch.float32):
    return torch.tensor(rng.standard_normal(shape), dtype=dtype, requires_grad=True)


def _assert_same_values_and_gradients(function, original, x, kernel, *args, atol=1e-5):
    results = []
    for f in (function, original):
        y = f(x, kernel, *args)
        dy = torch.tensor(np.random.default_rng(1).standard_normal(tuple(y.shape)), dtype=y.dtype)
        results.append((y, *torch.autograd.grad((y * dy).sum(), (x, kernel))))
    for name, got, expected in zip(("outputs", "inputs", "kernel"), *results):
        assert got.shape == expected.shape, name
        got, expected = got.detach().float().numpy(), expected.detach().float().numpy()
        scale = np.max(np.abs(expected))
        assert scale > 0, name
        np.testing.assert_allclose(got / scale, expected / scale, rtol=0, atol=atol, err_msg=name)
    return results[0][0]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(i) for i in range(len(CONV_CASES))])
def test_conv_matches_keras(case):
    batch, spatial, channels, size, filters, strides, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    x = _tensor(rng, (batch, *spatial, channels))
    kernel = _tensor(rng, (size,) * len(spatial) + (channels // groups, filters))
    args = (strides, padding, "channels_last", dilation)
    original = torch_nn.conv.keras_vae_original
    _assert_same_values_and_gradients(torch_nn.conv, original, x, kernel, *args)


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[str(i) for i in range(len(TRANSPOSE_CASES))])
def test_conv_transpose_matches_keras(case):
    batch, spatial, channels, size, filters, strides, padding, output_padding = case
    rng = np.random.default_rng(0)
    x = _tensor(rng, (batch, *spatial, channels))
    kernel = _tensor(rng, (size,) * len(spatial) + (filters, channels))
    args = (strides, padding, output_padding, "channels_last", 1)
    original = torch_nn.conv_transpose.keras_vae_original
    _assert_same_values_and_gradients(torch_nn.conv_transpose, original, x, kernel, *args)


def test_depthwise_and_bfloat16_and_channels_first():
    rng = np.random.default_rng(0)
    original = torch_nn.conv.keras_vae_original
    # depthwise_conv calls the module's `conv`: the copy-free one.
    x, kernel = _tensor(rng, (2, 6, 6, 3)), _tensor(rng, (3, 3, 3, 2))
    expected = original(x, kernel.reshape(3, 3, 1, 6), 2, "same", "channels_last")
    got = torch_nn.depthwise_conv(x, kernel, 2, "same", "channels_last")
    np.testing.assert_allclose(got.detach(), expected.detach(), rtol=1e-5, atol=1e-5)
    # bfloat16: forward and backward run; values within bfloat16's precision.
    x = _tensor(rng, (2, 6, 6, 4), torch.bfloat16)
    kernel = _tensor(rng, (3, 3, 4, 1), torch.bfloat16)
    y = _assert_same_values_and_gradients(
        torch_nn.conv, original, x, kernel, 1, "same", "channels_last", 1, atol=2e-2
    )
    assert y.dtype == torch.bfloat16
    # channels_first: Keras' own code.
    x, kernel = _tensor(rng, (2, 3, 5, 5)), _tensor(rng, (3, 3, 3, 2))
    _assert_same_values_and_gradients(
        torch_nn.conv, original, x, kernel, 1, "same", "channels_first", 1
    )


def test_inputs_reach_torch_without_a_copy(monkeypatch):
    seen = []
    conv2d = torch.nn.functional.conv2d

    def recording(inputs, *args, **kwargs):
        seen.append(inputs)
        return conv2d(inputs, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", recording)
    x = torch.randn(4, 7, 7, 8)
    y = torch_nn.conv(x, torch.randn(3, 3, 8, 16), 1, "same", "channels_last")
    (handed,) = seen
    assert handed.data_ptr() == x.data_ptr()  # a view of the NHWC inputs
    assert tuple(handed.shape) == (4, 8, 7, 7)
    assert y.is_contiguous() and tuple(y.shape) == (4, 7, 7, 16)


def test_installed_once_and_only_in_the_torch_backend():
    replaced = {
        name: getattr(torch_nn, name)
        for name in ("conv", "conv_transpose", "_maybe_convert_to_channels_last")
    }
    for name, function in replaced.items():
        original = function.keras_vae_original
        assert original.__module__ == "keras.src.backend.torch.nn", name
        assert not hasattr(original, "keras_vae_original"), name
    # Installing again (a second import) changes nothing.
    torch_training._replace("conv", torch_training._copy_free_conv)
    torch_training._replace("conv_transpose", torch_training._copy_free_conv_transpose)
    for name, function in replaced.items():
        assert getattr(torch_nn, name) is function, name
    # Keras' pooling keeps its own channels-first copy.
    assert torch_nn._transpose_spatial_inputs.__module__ == "keras.src.backend.torch.nn"
    assert not hasattr(torch_nn._transpose_spatial_inputs, "keras_vae_original")
    if BACKEND == "torch":
        assert backend_nn is torch_nn  # keras.ops.conv runs the copy-free one
    else:
        for name in ("conv", "conv_transpose"):
            assert not hasattr(getattr(backend_nn, name), "keras_vae_original"), name
            assert getattr(backend_nn, name).__module__ == f"keras.src.backend.{BACKEND}.nn"


def test_keras_conv_layers_run_it_on_torch():
    """Through `keras.layers` on torch: a tiny stride-2 conv / transposed-conv
    net's gradients are the same with Keras' functions put back. Elsewhere
    the active backend's `keras.ops` agree with the copy-free functions."""
    rng = np.random.default_rng(0)
    if BACKEND != "torch":
        x = rng.standard_normal((2, 6, 6, 3)).astype("float32")
        kernel = rng.standard_normal((3, 3, 3, 4)).astype("float32")
        transposed = rng.standard_normal((3, 3, 4, 3)).astype("float32")
        for op, kernel in ((keras.ops.conv, kernel), (keras.ops.conv_transpose, transposed)):
            args = (2, "same")
            expected = keras.ops.convert_to_numpy(op(x, kernel, *args))
            name = op.__name__
            got = getattr(torch_nn, name)(torch.tensor(x), torch.tensor(kernel), *args).numpy()
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4, err_msg=name)
        return
    x = rng.random((3, 8, 8, 2)).astype("float32")
    model = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
            keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same"),
            keras.layers.Conv2D(1, 2, padding="same"),
        ]
    )
    originals = {n: getattr(torch_nn, n).keras_vae_original for n in ("conv", "conv_transpose")}
    patched = {n: getattr(torch_nn, n) for n in originals}
    grads = []
    for functions in (patched, originals):
        for name, function in functions.items():
            setattr(torch_nn, name, function)
        try:
            model.zero_grad()
            keras.ops.sum(model(x) ** 2).backward()
            grads.append([w.value.grad.clone().numpy() for w in model.trainable_weights])
        finally:
            for name, function in patched.items():
                setattr(torch_nn, name, function)
    assert any(np.any(g != 0) for g in grads[0])
    for fast, slow in zip(*grads):
        np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
