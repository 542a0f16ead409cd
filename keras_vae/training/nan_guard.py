"""The divergence guard that `fit` of every zoo model runs (backend-neutral)."""

import math

import keras


class NaNGuard(keras.callbacks.Callback):
    """Stops training with a clear error as soon as the loss is not finite.

    Unlike `keras.callbacks.TerminateOnNaN`, which prints a line and leaves
    the model with NaN weights, this callback restores the weights the model
    had at the start of the epoch and raises `FloatingPointError`, so no
    garbage weights are silently saved or used afterwards. `fit` of every
    zoo model adds it unless one is passed (see `with_nan_guard`). Also
    importable as `keras_vae.callbacks.NaNGuard`.

    Example:

    >>> guard = NaNGuard()  # added by `model.fit` automatically
    """

    def __init__(self):
        super().__init__()
        self._weights = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._weights = self.model.get_weights()

    def on_train_batch_end(self, batch, logs=None):
        bad = {
            name: float(value)
            for name, value in (logs or {}).items()
            if not math.isfinite(float(value))
        }
        if not bad:
            return
        self.model.stop_training = True
        if self._weights is not None:
            self.model.set_weights(self._weights)
        raise FloatingPointError(
            f"Training diverged at epoch {self._epoch + 1}, batch {batch + 1}: "
            f"non-finite {bad}. The weights were restored to their values at "
            "the start of the epoch. Check the inputs for NaN or infinite "
            "values and consider a lower learning rate."
        )


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
