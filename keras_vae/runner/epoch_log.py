"""`EpochLog`: one line per epoch a person can follow, and the run's time."""

import time
from pathlib import Path

import keras

from keras_vae.runner.files import read_json, write_json


def _duration(seconds):
    """`seconds` as `42s`, `12m05s` or `3h07m`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class EpochLog(keras.callbacks.Callback):
    """Prints one line per epoch and keeps the run's training time.

    Each line names the stage and the epoch out of the total, the seconds
    of that epoch alone, the estimated time left (the mean epoch of this
    process times the epochs left) and the epoch's logs:

        train epoch 3/70 12s (eta 13m20s) loss=95.1 val_loss=93.2 ...

    A `fit` that resumes from a backup first says so: `resuming from epoch
    4 of 70 (3 done; run folder ...)`. With `every_batches`, a line every
    that many batches too (for long epochs). The training seconds are
    accumulated across restarts in `<name>.json` (`seconds()`), and the
    logs of every epoch of this process are kept in `history`.

    Args:
        run_dir: str or path. The run folder.
        stage: str. The name printed first on each line. Defaults to
            `"train"`.
        name: str. The time file's name. Defaults to `"train_seconds"`.
        every_batches: int. Also print the loss every that many batches;
            `0` never. Defaults to `0`.

    Example:

    >>> import tempfile
    >>> from keras_vae.runner import EpochLog
    >>> log = EpochLog(tempfile.mkdtemp())
    >>> log.seconds() < 1
    True
    """

    def __init__(self, run_dir, stage="train", name="train_seconds", every_batches=0):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.stage = stage
        self.every_batches = int(every_batches)
        self.path = self.run_dir / f"{name}.json"
        self.previous = read_json(self.path, {"seconds": 0.0})["seconds"]
        self.start = time.time()
        self.epochs_completed = None
        self.history = []
        self._epochs_this_process = 0
        self._first = True
        self._train_start = self._epoch_start = self.start

    def seconds(self):
        """Training seconds of the run, this process and earlier ones."""
        return self.previous + time.time() - self.start

    def on_train_begin(self, logs=None):
        self._first = True
        self._train_start = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        if self._first and epoch > 0:
            print(
                f"resuming from epoch {epoch + 1} of {self.params.get('epochs')} "
                f"({epoch} done; run folder {self.run_dir})",
                flush=True,
            )
        self._first = False
        self._epoch_start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if self.every_batches and (batch + 1) % self.every_batches == 0:
            loss = float((logs or {}).get("loss", float("nan")))
            steps = (self.params or {}).get("steps")
            of = f"/{steps}" if steps else ""
            print(
                f"{self.stage} batch {batch + 1}{of} "
                f"{_duration(time.time() - self._epoch_start)} loss={loss:.4f}",
                flush=True,
            )

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_completed = epoch + 1
        self._epochs_this_process += 1
        write_json(self.path, {"seconds": self.seconds()})
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.history.append({"epoch": epoch + 1, **logs})
        total = (self.params or {}).get("epochs") or epoch + 1
        mean = (time.time() - self._train_start) / self._epochs_this_process
        items = " ".join(f"{k}={v:.4g}" for k, v in sorted(logs.items()))
        print(
            f"{self.stage} epoch {epoch + 1}/{total} "
            f"{_duration(time.time() - self._epoch_start)} "
            f"(eta {_duration(mean * (total - epoch - 1))}) {items}",
            flush=True,
        )
