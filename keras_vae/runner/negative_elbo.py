"""`NegativeELBO`: the true negative ELBO beside the training objective."""

import keras


class NegativeELBO(keras.callbacks.Callback):
    """Adds `val_neg_elbo` to the epoch logs: validation reconstruction
    loss plus the full KL.

    Under KL warm-up (or free bits) `val_loss` is the training objective,
    whose KL weight is below 1, so it is lower than the negative ELBO and
    changes meaning as the weight rises; `val_neg_elbo` is the bound
    itself, comparable across epochs and with published figures, and is
    what the runner keeps the best weights and stops early on. Logs
    without `val_kl_loss` (a language model) are left as they are.

    Example:

    >>> from keras_vae.runner import NegativeELBO
    >>> logs = {"val_reconstruction_loss": 80.0, "val_kl_loss": 10.0}
    >>> NegativeELBO().on_epoch_end(0, logs)
    >>> logs["val_neg_elbo"]
    90.0
    """

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_kl_loss" in logs:
            logs["val_neg_elbo"] = logs["val_reconstruction_loss"] + logs["val_kl_loss"]
