"""Train and test steps for the PyTorch backend (`backward()`).

Multi-device: Keras has no distribution backend for torch. Wrap the
model's `compute_loss_terms` in a `torch.nn.Module` and train it with
`torch.nn.parallel.DistributedDataParallel` in a hand-written loop (see
docs/scaling.md); nothing here needs to change for that.
"""

import torch

from keras_vae.training.inputs import unpack_inputs


def _contiguous_when_a_channel_axis_is_one():
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
    from keras.src.backend.torch import nn

    convert = getattr(nn, "_maybe_convert_to_channels_last", None)
    if convert is None or getattr(convert, "keras_vae_patched", False):
        return

    def maybe_convert(tensor):
        if tensor.ndim >= 3 and 1 in tuple(tensor.shape[:2]):
            return tensor.contiguous()
        return convert(tensor)

    maybe_convert.keras_vae_patched = True
    nn._maybe_convert_to_channels_last = maybe_convert


_contiguous_when_a_channel_axis_is_one()


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
