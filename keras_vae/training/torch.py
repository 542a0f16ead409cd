"""Train and test steps for the PyTorch backend (`backward()`).

Multi-device: Keras has no distribution backend for torch. Wrap the
model's `compute_loss_terms` in a `torch.nn.Module` and train it with
`torch.nn.parallel.DistributedDataParallel` in a hand-written loop (see
docs/scaling.md); nothing here needs to change for that.

Importing this module (`keras_vae.training` does when Keras' backend is
torch) replaces three functions of Keras 3's torch
backend module `keras.src.backend.torch.nn`, once (importing it again
changes nothing); the originals stay reachable as the replacements'
`keras_vae_original` attribute:

- `_maybe_convert_to_channels_last`: tensors whose batch or channel axis
  is 1 go to torch's convolution in the default layout (torch's CPU
  `slow_conv2d` fails in the backward pass with "grad_weight must be
  contiguous" on Keras' ambiguous channels-last strides there).
- `conv` (and so `depthwise_conv` and `separable_conv`, which call it)
  and `conv_transpose`, for `data_format="channels_last"`: Keras copies
  the NHWC inputs into NCHW memory (`_transpose_spatial_inputs`), then
  `conv` copies them back to channels-last memory for oneDNN, and
  `conv_transpose` hands torch the NCHW copy and returns a strided view.
  Here the inputs go to `torch.nn.functional.conv*d` as the permuted
  view, whose memory already is channels-last, and the (channels-last)
  output is permuted back to a contiguous NHWC tensor: no copy of the
  activations. "same" padding is Keras' own (symmetric padding is given
  to the convolution, asymmetric padding is added with `F.pad` on the
  NHWC tensor); strides, dilation and groups are as in Keras. Measured
  with `benchmarks/torch_conv.py` on a shared, loaded 2-core CPU (load
  5 to 8, Keras' and these functions alternated in one process, medians
  of 2 rounds): `vae_binarized_mnist`'s decoder on 256 latents 1.47x
  faster, its `log_likelihood` (k=1000, `max_decode=8192`) 1.11x, ARCH's
  training 1.02x (rounds 1.24x and 0.86x: within the noise); ARCH's two
  `Conv2DTranspose` layers alone (forward and backward, batch 128)
  1.1x to 1.5x. `channels_first` calls, pooling and everything else
  keep Keras' code.
"""

import torch

from keras_vae.training.inputs import unpack_inputs


def _torch_nn():
    from keras.src.backend.torch import nn

    return nn


def _replace(name, make):
    """Puts `make(original)` in place of Keras' torch `nn.<name>`, once."""
    nn = _torch_nn()
    original = getattr(nn, name, None)
    if original is None or getattr(original, "keras_vae_original", None) is not None:
        return
    replacement = make(original)
    replacement.keras_vae_original = original
    setattr(nn, name, replacement)


def _contiguous_when_a_channel_axis_is_one(convert):
    """Works around a torch CPU convolution failure under Keras.

    Keras' torch convolution gives `conv2d` its inputs and kernel in the
    channels-last memory format. When an axis of size 1 leads the tensor
    (one output filter, e.g. a decoder's 1-channel output layer, or a batch
    of one example) those strides are ambiguous, and torch's fallback CPU
    kernel (`slow_conv2d`: float32 on small batches, bfloat16 and float16
    on CPUs without native support) fails in the backward pass with
    "slow_conv2d: grad_weight must be contiguous". Such tensors are made
    contiguous in the default layout instead: the same values, so only
    the memory layout of those few convolutions changes.
    """

    def maybe_convert(tensor):
        if tensor.ndim >= 3 and 1 in tuple(tensor.shape[:2]):
            return tensor.contiguous()
        return convert(tensor)

    return maybe_convert


def _to_channels_first(tensor):
    """NHWC -> NCHW as a view (no copy): its memory stays channels-last."""
    return torch.movedim(tensor, -1, 1)


def _torch_operands(inputs, kernel):
    """NHWC inputs and a Keras kernel as torch's convolutions take them:
    the inputs as a channels-first view, the kernel `(out, in, *spatial)`,
    both in channels-last memory (Keras' `_maybe_convert_to_channels_last`,
    with this module's workaround for 1-sized axes)."""
    nn = _torch_nn()
    inputs = nn._maybe_convert_to_channels_last(_to_channels_first(inputs))
    return inputs, nn._maybe_convert_to_channels_last(nn._transpose_conv_kernel(kernel))


def _to_channels_last(tensor):
    return torch.movedim(tensor, 1, -1)


def _same_padding(inputs, kernel_size, strides, dilation_rate):
    """Keras' "same" padding of channels-last `inputs`: the symmetric
    padding for torch's convolution, after `F.pad` of the asymmetric."""
    nn = _torch_nn()
    pads = [
        nn._compute_padding_length(length, size, stride, dilation)
        for length, size, stride, dilation in zip(
            inputs.shape[1:-1], kernel_size, strides, dilation_rate
        )
    ]
    if all(left == right for left, right in pads):
        return inputs, [left for left, _ in pads]
    flat = [0, 0]  # F.pad lists the last axis (channels) first.
    for left, right in reversed(pads):
        flat.extend((left, right))
    return torch.nn.functional.pad(inputs, flat), 0


def _copy_free_conv(original):
    from keras.src import backend
    from keras.src.utils.argument_validation import standardize_tuple

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        data_format = backend.standardize_data_format(data_format)
        nn = _torch_nn()
        inputs = nn.convert_to_tensor(inputs)
        kernel = nn.convert_to_tensor(kernel)
        rank = inputs.ndim - 2
        if data_format != "channels_last" or rank not in (1, 2, 3):
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        strides = standardize_tuple(strides, rank, "strides")
        dilation_rate = standardize_tuple(dilation_rate, rank, "dilation_rate")
        kernel_in_channels = kernel.shape[-2]
        if inputs.shape[-1] % kernel_in_channels != 0:
            raise ValueError(
                f"Input channels ({inputs.shape[-1]}) must be divisible by "
                f"kernel input channels ({kernel_in_channels})"
            )
        groups = inputs.shape[-1] // kernel_in_channels
        if padding == "same":
            inputs, padding = _same_padding(inputs, kernel.shape[:-2], strides, dilation_rate)
        else:
            padding = 0
        inputs, kernel = _torch_operands(inputs, kernel)
        convolve = getattr(torch.nn.functional, f"conv{rank}d")
        outputs = convolve(
            inputs,
            kernel,
            stride=strides,
            padding=padding,
            dilation=dilation_rate,
            groups=groups,
        )
        return _to_channels_last(outputs)

    return conv


def _copy_free_conv_transpose(original):
    from keras.src import backend
    from keras.src.backend.common.backend_utils import (
        check_conv_transpose_input_channels,
        compute_conv_transpose_output_crops_for_torch,
    )
    from keras.src.utils.argument_validation import standardize_tuple

    def conv_transpose(
        inputs,
        kernel,
        strides=1,
        padding="valid",
        output_padding=None,
        data_format=None,
        dilation_rate=1,
    ):
        data_format = backend.standardize_data_format(data_format)
        nn = _torch_nn()
        inputs = nn.convert_to_tensor(inputs)
        kernel = nn.convert_to_tensor(kernel)
        rank = inputs.ndim - 2
        if data_format != "channels_last" or rank not in (1, 2, 3):
            return original(
                inputs, kernel, strides, padding, output_padding, data_format, dilation_rate
            )
        strides = standardize_tuple(strides, rank, "strides")
        check_conv_transpose_input_channels(inputs, kernel, data_format)
        crops = compute_conv_transpose_output_crops_for_torch(
            input_shape=inputs.shape,
            kernel_shape=kernel.shape,
            strides=strides,
            padding=padding,
            output_padding=output_padding,
            dilation_rate=dilation_rate,
        )
        if isinstance(dilation_rate, int):
            dilation_rate = [dilation_rate] * rank
        inputs, kernel = _torch_operands(inputs, kernel)
        convolve = getattr(torch.nn.functional, f"conv_transpose{rank}d")
        outputs = _to_channels_last(
            convolve(inputs, kernel, stride=strides, dilation=dilation_rate)
        )
        # Keras' crop (or zero pad, for a negative crop) of each spatial axis.
        slices = [slice(None)]
        for left, right in crops:
            slices.append(slice(max(0, left), -right if right > 0 else None))
        outputs = outputs[tuple(slices)]
        if any(left < 0 or right < 0 for left, right in crops):
            pads = [0, 0]
            for left, right in reversed(crops):
                pads.extend((max(0, -left), max(0, -right)))
            outputs = torch.nn.functional.pad(outputs, pads)
        return outputs

    return conv_transpose


_replace("_maybe_convert_to_channels_last", _contiguous_when_a_channel_axis_is_one)
_replace("conv", _copy_free_conv)
_replace("conv_transpose", _copy_free_conv_transpose)


class Trainer:
    """Mixin with the PyTorch `train_step` / `test_step` of every model."""

    def train_step(self, data):
        x = unpack_inputs(data)
        self.zero_grad()
        terms = self.compute_loss_terms(x, training=True)
        loss = terms["loss"]
        if self.losses:
            loss = loss + sum(self.losses)
        self.optimizer.scale_loss(loss).backward()
        variables = self.trainable_weights[:]
        gradients = [v.value.grad for v in variables]
        with torch.no_grad():
            self.optimizer.apply(gradients, variables)
        return self.update_loss_trackers(terms, x)

    def test_step(self, data):
        # Keras already runs the test function under `torch.no_grad()`.
        x = unpack_inputs(data)
        terms = self.compute_loss_terms(x, training=False)
        return self.update_loss_trackers(terms, x)
