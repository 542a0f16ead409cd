"""`KeepBest`: the weights of the best epoch, kept across restarts."""

import os
from pathlib import Path

import keras

from keras_vae.runner.files import read_json, write_json


class KeepBest(keras.callbacks.Callback):
    """Saves the weights with the lowest `monitor` value, atomically.

    The weights go to `<name>.weights.h5` in the run folder and the best
    value and its epoch (1-based) to `<name>.json`, so a resumed run
    compares with the best of the epochs before the restart.

    Args:
        run_dir: str or path. The run folder.
        monitor: str. The logged quantity to minimise, e.g.
            `"val_neg_elbo"`.
        name: str. Base name of the two files. Defaults to `"best"`.

    Example:

    >>> import tempfile
    >>> from keras_vae.runner import KeepBest
    >>> keep = KeepBest(tempfile.mkdtemp(), monitor="val_neg_elbo")
    >>> keep.record
    {'val_neg_elbo': inf, 'epoch': None}
    """

    def __init__(self, run_dir, monitor, name="best"):
        super().__init__()
        self.monitor = monitor
        self.weights_path = Path(run_dir) / f"{name}.weights.h5"
        self.record_path = Path(run_dir) / f"{name}.json"
        self.record = {monitor: float("inf"), "epoch": None}
        if self.weights_path.is_file():
            self.record = read_json(self.record_path, self.record)

    def on_epoch_end(self, epoch, logs=None):
        value = float((logs or {}).get(self.monitor, float("inf")))
        if value < self.record[self.monitor]:
            tmp = self.weights_path.with_name(f"part.{self.weights_path.name}")
            self.model.save_weights(tmp)
            os.replace(tmp, self.weights_path)
            self.record = {self.monitor: value, "epoch": epoch + 1}
            write_json(self.record_path, self.record)
