"""Train and test steps for the PyTorch backend (`backward()`).

Multi-device: Keras has no distribution backend for torch. Wrap the
model's `compute_loss_terms` in a `torch.nn.Module` and train it with
`torch.nn.parallel.DistributedDataParallel` in a hand-written loop (see
docs/scaling.md); nothing here needs to change for that.
"""

import torch

from keras_vae.training.inputs import unpack_inputs


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
