"""Convolutions with few output channels as one matmul, for the train steps.

A stride-1 convolution whose outputs are few (the 1-channel Bernoulli
logits at the end of an image decoder: 3x3, 32 -> 1 channels at 28x28)
runs slowly on the CPU on every backend: oneDNN (TensorFlow, torch) and
XLA:CPU (JAX) are tuned for many output channels, and the kernel gradient
contracts batch and positions in a layout they handle badly. Here such a
convolution is written the other way round: `z = x @ w_taps`, one matmul
from the input channels to `prod(kernel_size) * out_channels` columns (one
per kernel tap and output channel), then the output is the sum over taps
of `z` shifted by the tap's offset. Its gradient (`keras.ops.custom_gradient`)
is the same construction backwards: the windows of the output gradient at
every tap (`prod(kernel_size) * out_channels` channels, small), times
`w_taps^T` for the input gradient and contracted with the inputs for the
kernel gradient: two matmuls and cheap slices, no convolution at all.

`narrow_convs()` swaps Keras' backend `conv` (what `keras.ops.conv` and
`Conv2D` call) for a version that takes this path for the 2D,
channels-last, stride-1, dilation-1, float32 convolutions with
`prod(kernel_size) * out_channels <= in_channels` (the matmul's output no
wider than its input) and calls Keras' op otherwise. The TensorFlow and
JAX train steps run the model inside it; torch's keeps Keras' op (its
layer is faster this way too with 32 input channels, but ARCH's training
was not). The forward equals Keras' convolution to float32 rounding (the
sum runs in another order), the gradients too. `KERAS_VAE_NARROW_CONV=0`
turns it off. Measured with benchmarks/narrow_conv.py (benchmarks/RESULTS.md):
ARCH trains 8% faster on TensorFlow and 11% on JAX, whose output layer's
forward and gradients take 2.3x less time.
"""

import contextlib
import os

import keras
from keras import ops

NARROW_CONV_ENV = "KERAS_VAE_NARROW_CONV"


def _plan(inputs, kernel, strides, padding, data_format, dilation_rate):
    """The `(low, high)` padding of both spatial axes where the matmul form
    applies, else `None`."""
    from keras.src.backend import standardize_data_format

    if len(inputs.shape) != 4 or len(kernel.shape) != 4:
        return None
    if standardize_data_format(data_format) != "channels_last":
        return None
    if any(keras.backend.standardize_dtype(t.dtype) != "float32" for t in (inputs, kernel)):
        return None
    if strides not in (1, (1, 1), [1, 1]) or dilation_rate not in (1, (1, 1), [1, 1]):
        return None
    k1, k2, cin, cout = kernel.shape
    if inputs.shape[-1] != cin or k1 * k2 * cout > cin:
        return None
    sizes = inputs.shape[1:3]
    if any(s is None for s in sizes) or padding.lower() not in ("same", "valid"):
        return None
    pads = []
    for size, k in zip(sizes, (k1, k2)):
        low = (k - 1) // 2 if padding.lower() == "same" else 0
        high = k - 1 - low if padding.lower() == "same" else 0
        if size + low + high < k:
            return None  # Keras' op raises its own error.
        pads.append((low, high))
    return pads


def _tap_matrix(kernel):
    """`(cin, k1 * k2 * cout)`: the kernel's taps side by side."""
    k1, k2, cin, cout = kernel.shape
    return ops.reshape(ops.transpose(kernel, (2, 0, 1, 3)), (cin, k1 * k2 * cout))


def _matmul_conv(inputs, kernel, pads):
    """The convolution as `x @ w_taps` plus shifted sums, with its gradient."""
    k1, k2, cin, cout = kernel.shape
    batch, height, width = ops.shape(inputs)[0], inputs.shape[1], inputs.shape[2]
    (top, bottom), (left, right) = pads
    out_h, out_w = height + top + bottom - k1 + 1, width + left + right - k2 + 1
    taps = [(u, v) for u in range(k1) for v in range(k2)]

    @ops.custom_gradient
    def conv(x, w):
        w_taps = _tap_matrix(w)
        z = ops.matmul(ops.reshape(x, (-1, cin)), w_taps)
        z = ops.pad(
            ops.reshape(z, (batch, height, width, len(taps) * cout)),
            [(0, 0), (top, bottom), (left, right), (0, 0)],
        )
        y = None
        for t, (u, v) in enumerate(taps):
            part = z[:, u : u + out_h, v : v + out_w, t * cout : (t + 1) * cout]
            y = part if y is None else y + part

        def grad(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            # dz at input position h, tap u is dy at h + top - u: a window of
            # dy padded by k - 1 on both sides.
            dy_pad = ops.pad(dy, [(0, 0), (k1 - 1, k1 - 1), (k2 - 1, k2 - 1), (0, 0)])
            windows = ops.concatenate(
                [
                    dy_pad[
                        :,
                        top - u + k1 - 1 : top - u + k1 - 1 + height,
                        left - v + k2 - 1 : left - v + k2 - 1 + width,
                        :,
                    ]
                    for u, v in taps
                ],
                axis=-1,
            )
            windows = ops.reshape(windows, (-1, len(taps) * cout))
            dx = ops.reshape(ops.matmul(windows, ops.transpose(w_taps)), ops.shape(x))
            dw_taps = ops.matmul(ops.transpose(ops.reshape(x, (-1, cin))), windows)
            dw = ops.transpose(ops.reshape(dw_taps, (cin, k1, k2, cout)), (1, 2, 0, 3))
            return dx, dw

        return y, grad

    return conv(inputs, kernel)


def with_narrow_matmul(conv):
    """Keras' backend `conv` with the matmul form for narrow convolutions.

    Args:
        conv: Keras' backend `conv` (`keras.src.backend.nn.conv`).

    Returns:
        A function with `conv`'s arguments and outputs: the matmul form
        where it applies (see the module's docstring), `conv` otherwise.

    Example:

    >>> import numpy as np
    >>> from keras.src.backend import nn
    >>> fast = with_narrow_matmul(nn.conv)
    >>> x = np.random.rand(2, 5, 5, 9).astype("float32")
    >>> k = np.random.rand(3, 3, 9, 1).astype("float32")  # 9 taps x 1 <= 9 inputs
    >>> a = keras.ops.convert_to_numpy(fast(x, k, padding="same"))
    >>> b = keras.ops.convert_to_numpy(nn.conv(x, k, padding="same"))
    >>> bool(np.allclose(a, b, atol=1e-5))
    True
    """

    def narrow_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        args = (strides, padding, data_format, dilation_rate)
        inputs, kernel = ops.convert_to_tensor(inputs), ops.convert_to_tensor(kernel)
        pads = _plan(inputs, kernel, *args)
        if pads is None:
            return conv(inputs, kernel, *args)
        return _matmul_conv(inputs, kernel, pads)

    narrow_conv.keras_vae_narrow_original = conv
    return narrow_conv


@contextlib.contextmanager
def narrow_convs():
    """Within this context, Keras' backend `conv` takes the matmul form for
    narrow convolutions (`with_narrow_matmul`); restored on exit.

    A no-op with `KERAS_VAE_NARROW_CONV=0`. The TensorFlow and JAX train
    steps run the model inside it; nothing outside keras-vae's step sees
    it. Nested uses swap once.

    Example:

    >>> import numpy as np
    >>> with narrow_convs():
    ...     y = keras.ops.conv(np.ones((1, 4, 4, 9), "float32"), np.ones((3, 3, 9, 1), "float32"))
    >>> tuple(y.shape)
    (1, 2, 2, 1)
    """
    from keras.src.backend import nn as backend_nn

    original = backend_nn.conv
    if os.environ.get(NARROW_CONV_ENV) == "0" or hasattr(original, "keras_vae_narrow_original"):
        yield
        return
    backend_nn.conv = with_narrow_matmul(original)
    try:
        yield
    finally:
        backend_nn.conv = original

