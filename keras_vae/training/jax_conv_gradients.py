"""Convolution kernel gradients as one matmul, for the JAX train step.

XLA:CPU lowers the kernel gradient of a convolution to another
convolution that contracts the batch and the spatial positions, for which
it has no fast kernel: on ARCH (issue 24's network) the kernel gradients
of its two stride-2 `Conv2DTranspose` layers took about 10x longer than
the same product written as a matmul, and the 2x2 convolutions of the
default sub-pixel decoder 3-5x longer. Here the kernel gradient is
`windows^T @ other`: for each kernel offset a strided slice of one side
(the padded inputs, or the padded output gradient), concatenated on the
channel axis, times the other side, contracted over batch and positions
in one `tensordot` (the side with fewer channels is windowed).

The same windows serve twice more. A `conv_transpose`'s windows of the
output gradient (one per input position) give its input gradient too,
`windows @ kernel`, where XLA:CPU's own (a strided convolution) ran at
half the matmul's speed; a strided `conv` computes its forward as
`windows @ kernel` from the windows of its inputs, which its kernel
gradient then reuses (XLA:CPU's strided convolutions ran at a third of
its matmul speed on ARCH's encoder).

`fast_conv_gradients()` swaps Keras' JAX `conv` and `conv_transpose` (what
`keras.ops.conv*`, `Conv*D` and `Conv*DTranspose` call) for versions with
these gradients (`jax.custom_vjp`; the other input gradients are
`jax.linear_transpose` of Keras' op, what autodiff gives anyway). Outside
differentiation the forward is Keras' op; under it, a strided `conv`'s
forward is the matmul, equal to Keras' to float32 rounding. The JAX train
step traces the model inside it. Cases
not derived and tested (dilation > 1, groups, dtypes other than float32,
more than 3 spatial axes) call Keras' op unchanged. It is on where JAX runs
on the CPU (measured there); `KERAS_VAE_FAST_CONV_GRADIENTS=1` turns it on
on any platform (not yet measured on a GPU), `=0` off. See
benchmarks/RESULTS.md for the measurements.
"""

import contextlib
import itertools
import os

import jax
import keras

FAST_CONV_GRADIENTS_ENV = "KERAS_VAE_FAST_CONV_GRADIENTS"

# The dtypes the matmul kernel gradients are tested for; anything else
# (bfloat16, float16) keeps Keras' op.
_FAST_DTYPES = ("float32",)


def _common_plan(inputs, kernel, strides, data_format, dilation_rate, kernel_in_axis):
    """Data format, kernel size and strides, or `None` where the fast
    kernel gradient is not derived (the caller then keeps Keras' op)."""
    from keras.src.backend import standardize_data_format

    num_spatial = inputs.ndim - 2
    if num_spatial not in (1, 2, 3) or kernel.ndim != inputs.ndim:
        return None
    if str(inputs.dtype) not in _FAST_DTYPES or str(kernel.dtype) not in _FAST_DTYPES:
        return None
    data_format = standardize_data_format(data_format)
    channels_axis = -1 if data_format == "channels_last" else 1
    if inputs.shape[channels_axis] != kernel.shape[kernel_in_axis]:
        return None  # Groups, or a mismatch for which Keras' op raises its own error.
    dilation = (dilation_rate,) * num_spatial if isinstance(dilation_rate, int) else dilation_rate
    if tuple(dilation) != (1,) * num_spatial:
        return None
    strides = (strides,) * num_spatial if isinstance(strides, int) else tuple(strides)
    if len(strides) != num_spatial:
        return None
    return {
        "data_format": data_format,
        "kernel_size": tuple(kernel.shape[:num_spatial]),
        "strides": strides,
    }


def _conv_transpose_plan(
    inputs, kernel, strides, padding, output_padding, data_format, dilation_rate
):
    """How to compute `conv_transpose`'s kernel gradient as a matmul.

    Keras' JAX `conv_transpose` is `lax.conv_transpose` with
    `transpose_kernel=True` and per-axis padding `(pl, pr)`: along one
    spatial axis (dilation 1), input position `i` adds `x[i] @ kernel[u]`
    to output position `s * i + u - (k - 1 - pl)`. So the kernel gradient
    is `dk[u, co, ci] = sum_{b, i} dy[b, s * i + u - (k - 1 - pl), co] *
    x[b, i, ci]` (out-of-range `dy` is zero): the stride-`s`, size-`k`
    windows of `dy` padded by `(k - 1 - pl, k - 1 - pr)` (one window per
    input position), times the inputs.
    """
    from keras.src.backend.common.backend_utils import (
        compute_conv_transpose_padding_args_for_jax,
    )

    plan = _common_plan(inputs, kernel, strides, data_format, dilation_rate, kernel_in_axis=-1)
    if plan is None:
        return None
    pads = compute_conv_transpose_padding_args_for_jax(
        input_shape=inputs.shape,
        kernel_shape=kernel.shape,
        strides=plan["strides"],
        padding=padding,
        output_padding=output_padding,
        dilation_rate=1,
    )
    plan["window_pads"] = [
        (k - 1 - pl, k - 1 - pr) for k, (pl, pr) in zip(plan["kernel_size"], pads)
    ]
    return plan


def _conv_plan(inputs, kernel, strides, padding, data_format, dilation_rate):
    """How to compute `conv`'s kernel gradient as a matmul.

    Keras' JAX `conv` is `lax.conv_general_dilated`: output position `p`
    reads the padded inputs at `s * p + u` for kernel offset `u`, so
    `dk[u, ci, co] = sum_{b, p} x_pad[b, s * p + u, ci] * dy[b, p, co]`:
    the stride-`s` windows of the padded inputs times `dy`. With stride 1
    the same sum is `sum_{b, q} x_pad[b, q, ci] * dy_pad[b, q - u + k - 1,
    co]` (`dy` padded by `k - 1` on both sides): windows of `dy` times the
    padded inputs, cheaper when `dy` has fewer channels (a 1-channel
    output layer).
    """
    plan = _common_plan(inputs, kernel, strides, data_format, dilation_rate, kernel_in_axis=-2)
    if plan is None or not isinstance(padding, str):
        return None
    channels_last = plan["data_format"] == "channels_last"
    spatial = inputs.shape[1:-1] if channels_last else inputs.shape[2:]
    plan["pads"] = jax.lax.padtype_to_pads(
        spatial, plan["kernel_size"], plan["strides"], padding.upper()
    )
    return plan


def _windows(tensor, kernel_size, starts, counts, strides):
    """The strided slices of a channels-last `tensor` at every kernel
    offset, concatenated on the channel axis: shape `(batch, *counts,
    prod(kernel_size) * channels)`, ordered `(*kernel_size, channels)`.
    `starts(offset)` gives each slice's first position."""
    windows = []
    for offset in itertools.product(*(range(k) for k in kernel_size)):
        first = starts(offset)
        ends = [f + s * (n - 1) + 1 for f, s, n in zip(first, strides, counts)]
        if min(first) < 0 or any(e > size for e, size in zip(ends, tensor.shape[1:-1])):
            raise AssertionError(
                f"Kernel gradient windows at {offset} leave the padded tensor {tensor.shape}."
            )
        windows.append(
            jax.lax.slice(
                tensor,
                (0, *first, 0),
                (tensor.shape[0], *ends, tensor.shape[-1]),
                (1, *strides, 1),
            )
        )
    return jax.numpy.concatenate(windows, axis=-1)


def _pad_spatial(tensor, pads):
    """`tensor` (channels last) padded with zeros, cropped where a pad is
    negative."""
    config = [(0, 0, 0)] + [(low, high, 0) for low, high in pads] + [(0, 0, 0)]
    return jax.lax.pad(tensor, jax.numpy.zeros((), tensor.dtype), config)


def _matmul_over_positions(windows, other):
    """`windows^T @ other` over batch and positions: `(w_channels,
    other_channels)`."""
    return jax.numpy.tensordot(
        windows.reshape(-1, windows.shape[-1]),
        other.reshape(-1, other.shape[-1]),
        axes=((0,), (0,)),
        precision=jax.lax.Precision.HIGHEST,
    )


def _channels_last(plan, *tensors):
    if plan["data_format"] == "channels_last":
        return tensors
    return tuple(jax.numpy.moveaxis(t, 1, -1) for t in tensors)


def _from_channels_last(plan, tensor):
    if plan["data_format"] == "channels_last":
        return tensor
    return jax.numpy.moveaxis(tensor, -1, 1)


def _windows_times_kernel(windows, kernel):
    """`windows @ kernel`, the kernel flattened to `(prod(kernel_size) * c,
    c_other)` (the windows' channel order)."""
    return jax.numpy.tensordot(
        windows,
        kernel.reshape(-1, kernel.shape[-1]),
        axes=((windows.ndim - 1,), (0,)),
        precision=jax.lax.Precision.HIGHEST,
    )


def _conv_transpose_gradients(x, kernel, dy, plan):
    """Both gradients of `conv_transpose` (see `_conv_transpose_plan`) from
    the windows of `dy`, one window per input position: the kernel
    gradient `windows^T @ x`, shape `(*kernel_size, cout, cin)`, and the
    input gradient `windows @ kernel` (XLA:CPU's own, a strided
    convolution, ran at half the matmul's speed on ARCH)."""
    x_last, dy_last = _channels_last(plan, x, dy)
    windows = _windows(
        _pad_spatial(dy_last, plan["window_pads"]),
        plan["kernel_size"],
        starts=lambda offset: offset,
        counts=x_last.shape[1:-1],
        strides=plan["strides"],
    )  # (batch, *input spatial, prod(kernel_size) * cout)
    dk = _matmul_over_positions(windows, x_last).reshape(kernel.shape)
    dx = _from_channels_last(plan, _windows_times_kernel(windows, kernel))
    return dx.astype(x.dtype), dk.astype(kernel.dtype)


def _conv_input_windows(x_last, plan, output_spatial):
    """The stride-`s` windows of the padded inputs, one per output
    position: `(batch, *output_spatial, prod(kernel_size) * cin)`."""
    return _windows(
        _pad_spatial(x_last, plan["pads"]),
        plan["kernel_size"],
        starts=lambda offset: offset,
        counts=output_spatial,
        strides=plan["strides"],
    )


def _conv_kernel_gradient(x, dy, plan, windows=None):
    """The kernel gradient of `conv` (see `_conv_plan`), shape
    `(*kernel_size, cin, cout)`; `windows`, if given, are the forward's
    windows of the inputs."""
    x, dy = _channels_last(plan, x, dy)
    kernel_size, strides = plan["kernel_size"], plan["strides"]
    cin, cout = x.shape[-1], dy.shape[-1]
    if windows is None and strides == (1,) * len(strides) and cout < cin:
        x_pad = _pad_spatial(x, plan["pads"])
        dy_windows = _windows(
            _pad_spatial(dy, [(k - 1, k - 1) for k in kernel_size]),
            kernel_size,
            starts=lambda offset: [k - 1 - u for k, u in zip(kernel_size, offset)],
            counts=x_pad.shape[1:-1],
            strides=strides,
        )  # (batch, *padded input spatial, prod(kernel_size) * cout)
        dk = _matmul_over_positions(dy_windows, x_pad).reshape(kernel_size + (cout, cin))
        return jax.numpy.swapaxes(dk, -1, -2).astype(x.dtype)
    if windows is None:
        windows = _conv_input_windows(x, plan, dy.shape[1:-1])
    return _matmul_over_positions(windows, dy).reshape(kernel_size + (cin, cout)).astype(x.dtype)


def _fast_conv_transpose(op, plan, args):
    """`op` (Keras' `conv_transpose`) with `_conv_transpose_gradients`."""

    @jax.custom_vjp
    def fast(x, k):
        return op(x, k, *args)

    def forward(x, k):
        return op(x, k, *args), (x, k)

    def backward(residuals, dy):
        x, k = residuals
        return _conv_transpose_gradients(x, k, dy, plan)

    fast.defvjp(forward, backward)
    return fast


def _fast_conv(op, plan, args):
    """`op` (Keras' `conv`) with `_conv_kernel_gradient` as its kernel
    gradient and Keras' input gradient (`jax.linear_transpose` of the
    forward, what autodiff gives). A strided convolution computes its
    forward as `windows @ kernel` from the windows its kernel gradient
    takes, and keeps them for it (XLA:CPU's strided convolutions ran at
    a third of its matmul speed on ARCH's encoder); a stride-1 one keeps
    Keras' forward."""
    strided = plan["strides"] != (1,) * len(plan["strides"])

    @jax.custom_vjp
    def fast(x, k):
        return op(x, k, *args)

    def forward(x, k):
        if not strided:
            return op(x, k, *args), (x, k, None)
        y_shape = jax.eval_shape(lambda x, k: op(x, k, *args), x, k).shape
        (x_last,) = _channels_last(plan, x)
        channels_last = plan["data_format"] == "channels_last"
        windows = _conv_input_windows(x_last, plan, y_shape[1:-1] if channels_last else y_shape[2:])
        y = _from_channels_last(plan, _windows_times_kernel(windows, k))
        return y.astype(x.dtype), (x, k, windows)

    def backward(residuals, dy):
        x, k, windows = residuals
        (dx,) = jax.linear_transpose(lambda x: op(x, k, *args), x)(dy)
        return dx, _conv_kernel_gradient(x, dy, plan, windows)

    fast.defvjp(forward, backward)
    return fast


def with_fast_kernel_gradients(conv=None, conv_transpose=None):
    """Keras' JAX `conv` and `conv_transpose` with matmul kernel gradients.

    Args:
        conv: Keras' JAX `conv` (or `None`).
        conv_transpose: Keras' JAX `conv_transpose` (or `None`).

    Returns:
        A pair `(conv, conv_transpose)` with the same arguments and forward
        as the functions passed in (`None` stays `None`); cases not derived
        and tested call them unchanged.
    """

    def fast_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        args = (strides, padding, data_format, dilation_rate)
        inputs, kernel = jax.numpy.asarray(inputs), jax.numpy.asarray(kernel)
        plan = _conv_plan(inputs, kernel, *args)
        if plan is None:
            return conv(inputs, kernel, *args)
        return _fast_conv(conv, plan, args)(inputs, kernel)

    def fast_conv_transpose(
        inputs,
        kernel,
        strides=1,
        padding="valid",
        output_padding=None,
        data_format=None,
        dilation_rate=1,
    ):
        args = (strides, padding, output_padding, data_format, dilation_rate)
        inputs, kernel = jax.numpy.asarray(inputs), jax.numpy.asarray(kernel)
        plan = _conv_transpose_plan(inputs, kernel, *args)
        if plan is None:
            return conv_transpose(inputs, kernel, *args)
        return _fast_conv_transpose(conv_transpose, plan, args)(inputs, kernel)

    fast_conv.has_fast_kernel_gradient = True
    fast_conv_transpose.has_fast_kernel_gradient = True
    return (
        None if conv is None else fast_conv,
        None if conv_transpose is None else fast_conv_transpose,
    )


@contextlib.contextmanager
def fast_conv_gradients():
    """Within this context, Keras' JAX `conv` and `conv_transpose` have the
    matmul kernel gradients of `with_fast_kernel_gradients`; restored on
    exit.

    A no-op on other backends, with `KERAS_VAE_FAST_CONV_GRADIENTS=0`, and
    where JAX's default platform is not the CPU unless that variable is `1`
    (the speed-up is measured on XLA:CPU only). The JAX train step traces
    the model inside it: the swap happens once per trace, not per step, and
    nothing outside keras-vae's step sees it.

    Example:

    >>> import numpy as np, keras
    >>> with fast_conv_gradients():
    ...     y = keras.ops.conv(np.ones((1, 4, 4, 1), "float32"), np.ones((3, 3, 1, 2), "float32"))
    >>> tuple(y.shape)
    (1, 2, 2, 2)
    """
    flag = os.environ.get(FAST_CONV_GRADIENTS_ENV, "")
    if (
        keras.backend.backend() != "jax"
        or flag == "0"
        or (flag != "1" and jax.default_backend() != "cpu")
    ):
        yield
        return
    from keras.src.backend import nn as backend_nn

    original = (backend_nn.conv, backend_nn.conv_transpose)
    if getattr(original[0], "has_fast_kernel_gradient", False):
        yield  # Already inside one.
        return
    backend_nn.conv, backend_nn.conv_transpose = with_fast_kernel_gradients(*original)
    try:
        yield
    finally:
        backend_nn.conv, backend_nn.conv_transpose = original
