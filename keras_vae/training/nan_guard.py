"""The divergence guard that `fit` of every zoo model runs (backend-neutral)."""

import math

import keras
import numpy as np


class NaNGuard(keras.callbacks.Callback):
    """Stops training with a clear error as soon as the loss is not finite.

    Unlike `keras.callbacks.TerminateOnNaN`, which prints a line and leaves
    the model with NaN weights, this callback restores the model's weights
    and its optimizer's variables (moments, iteration count, learning rate)
    to their values at the start of the epoch, the last point known to be
    good, and raises `FloatingPointError`. So no garbage weights are
    silently saved or used afterwards, and a retry (with a lower learning
    rate, say) resumes from a consistent state instead of from NaN
    moments. `fit` of every zoo model adds it unless one is passed (see
    `with_nan_guard`). Also importable as `keras_vae.callbacks.NaNGuard`.

    Example:

    >>> guard = NaNGuard()  # added by `model.fit` automatically
    """

    def __init__(self):
        super().__init__()
        self._weights = None
        self._optimizer_values = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        model = self.model
        self._weights = model.get_weights()
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            self._optimizer_values = None
            return
        if not optimizer.built:
            # Keras builds the optimizer on the first step on some backends;
            # build it now (as Keras' own symbolic build does) so its
            # starting state can be recorded.
            optimizer.build(model.trainable_variables)
        self._optimizer_values = [
            np.array(keras.ops.convert_to_numpy(v)) for v in optimizer.variables
        ]

    def on_train_batch_end(self, batch, logs=None):
        bad = {
            name: float(value)
            for name, value in (logs or {}).items()
            if not math.isfinite(float(value))
        }
        if not bad:
            return
        self.model.stop_training = True
        restored = self._restore()
        raise FloatingPointError(
            f"Training diverged at epoch {self._epoch + 1}, batch {batch + 1}: "
            f"non-finite {bad}. The {restored} restored to their values at "
            "the start of the epoch. Check the inputs for NaN or infinite "
            "values and consider a lower learning rate."
        )

    def _restore(self):
        """Puts back the epoch-start state; says what was restored."""
        model = self.model
        if self._weights is None:
            return "weights were not"
        model.set_weights(self._weights)
        optimizer = getattr(model, "optimizer", None)
        values = self._optimizer_values
        if optimizer is None or values is None:
            return "weights were"
        variables = optimizer.variables
        if len(variables) != len(values):
            return "weights were (the optimizer's state was not: it changed shape)"
        for variable, value in zip(variables, values):
            variable.assign(value)
        return "weights and the optimizer's state were"


def with_nan_guard(callbacks):
    """`callbacks` as a list, with a `NaNGuard` appended unless one is there.

    Example:

    >>> [type(c).__name__ for c in with_nan_guard(None)]
    ['NaNGuard']
    >>> len(with_nan_guard([NaNGuard()]))
    1
    """
    callbacks = list(callbacks or [])
    if not any(isinstance(c, NaNGuard) for c in callbacks):
        callbacks.append(NaNGuard())
    return callbacks
