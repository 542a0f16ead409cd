"""`Stage`: one `fit` of a run, as the runner drives it."""

import dataclasses
from typing import Callable, Optional


@dataclasses.dataclass
class Stage:
    """One `fit` of a run: what a model family hands the runner.

    Most recipes train in one stage (named `"train"`); the VQ-VAE trains
    its prior in a second one (`"prior"`). The runner wraps `fit` with the
    resumable callbacks (backup, best weights, early stopping, learning
    rate decay, their saved counters, the epoch log), skips a stage that a
    finished run already did, and keeps the stage's files in the run
    folder under names ending in `_<name>` (no suffix for `"train"`).

    Args:
        name: str. The stage's name, e.g. `"train"` or `"prior"`.
        fit: callable `fit(callbacks, completed_epochs) -> History`: calls
            the model's `fit` with `callbacks` and `epochs`;
            `completed_epochs` is what the backup resumes from, for data
            iterators whose order depends on the epoch.
        epochs: int. Epochs of the stage.
        monitor: str or None. Keep the weights with the lowest value of
            this logged quantity (e.g. `"val_neg_elbo"`); `None` keeps the
            final weights. Defaults to `None`.
        early_stopping_patience: int or None. Stop after that many epochs
            without a better `monitor`. Defaults to `None` (never).
        lr_decay: dict or None. `ReduceLROnPlateau` on `monitor`: keys
            `factor`, `patience`, `min_learning_rate`. Defaults to `None`.
        callbacks: tuple of callbacks run first at each epoch end (e.g.
            ones that add logs). Defaults to `()`.
        every_batches: int. Print the loss every that many batches too.
            Defaults to `0` (once per epoch).
        record: callable `record(model) -> dict` or None: figures of the
            trained model to keep in the stage's record (e.g. its step
            counter). Defaults to `None`.

    Example:

    >>> from keras_vae.runner import Stage
    >>> stage = Stage("train", fit=lambda callbacks, completed: None, epochs=3)
    >>> stage.suffix
    ''
    """

    name: str
    fit: Callable
    epochs: int
    monitor: Optional[str] = None
    early_stopping_patience: Optional[int] = None
    lr_decay: Optional[dict] = None
    callbacks: tuple = ()
    every_batches: int = 0
    record: Optional[Callable] = None

    @property
    def suffix(self):
        """`""` for the stage `"train"`, else `"_<name>"`: the ending of the
        stage's file names in the run folder."""
        return "" if self.name == "train" else f"_{self.name}"
