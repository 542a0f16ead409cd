"""What the zoo's training scripts share: the resumable run folder and its
backups, atomic JSON files, the best-weights, progress and resume-state
callbacks, and the hardware line of the metadata."""

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np

from keras_vae import presets


def write_json(path, obj):
    """Writes `obj` as JSON to `path` atomically (a temporary file renamed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def copy_beside_preset(path, preset_dir):
    """Copies file `path` into `preset_dir` atomically (for pictures that
    sit beside a preset's hashed files: `save_to_preset` replaces the
    whole folder, so they are added after it)."""
    target = Path(preset_dir) / Path(path).name
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(Path(path).read_bytes())
    os.replace(tmp, target)


def positive_int(text):
    """`argparse` type of the count options (epochs, steps, images...):
    an int >= 1, so `0` is refused rather than read as "not given"."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip():
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def output_folder(parser, preset, output, changed):
    """The preset folder a run writes: `output`, or by default `zoo/<preset>`.

    The default folder holds the shipped preset, so a run that trains or
    measures something other than the recipe (`changed`: the options given
    that do so, e.g. `{"--train-images": True}`) must name its own folder;
    `parser.error` says so instead of replacing the shipped preset.
    """
    if output is not None:
        return Path(output)
    given = sorted(name for name, is_given in changed.items() if is_given)
    if given:
        parser.error(
            f"{', '.join(given)} changes what the shipped recipe trains or "
            f"measures: pass --output DIR (the default, zoo/{preset}, holds "
            f"the shipped preset)"
        )
    return presets.zoo_dir() / preset


def run_folder(preset, key, run_dir=None):
    """The run folder of `preset`, created if needed.

    `run_dir` when given; otherwise `<keras home>/keras_vae/runs/<preset>-<hash>`,
    the hash taken over `key` (the recipe and the options that change the
    run) and the backend, so a rerun of the same command resumes the same
    run and another recipe starts a fresh one.
    """
    if run_dir is None:
        digest = hashlib.sha256(
            json.dumps([key, keras.backend.backend()], sort_keys=True).encode()
        ).hexdigest()[:12]
        run_dir = Path(presets.keras_home()) / "keras_vae" / "runs" / f"{preset}-{digest}"
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    print(f"Run folder: {run_dir}", flush=True)
    return run_dir


def backup_and_restore(run_dir, name="backup"):
    """The run's `keras.callbacks.BackupAndRestore`, in `run_dir / name`.

    Two differences from the defaults, so that no training is lost:
    `double_checkpoint=True` keeps the previous epoch's checkpoint, which a
    run killed while writing the latest one (a truncated file) resumes
    from; `delete_checkpoint=False` keeps the backup when `fit` returns,
    so a run killed before its final weights are written resumes at its
    last epoch instead of starting over. `remove_backup` deletes it once
    the final weights are on disk.
    """
    return keras.callbacks.BackupAndRestore(
        str(Path(run_dir) / name), double_checkpoint=True, delete_checkpoint=False
    )


def remove_backup(run_dir, name="backup"):
    """Deletes a finished run's backup (see `backup_and_restore`)."""
    shutil.rmtree(Path(run_dir) / name, ignore_errors=True)


def backed_up_epochs(run_dir, name="backup"):
    """Epochs completed by the run's `backup_and_restore` backup, or `None`
    when it has none (this is where Keras' format is read)."""
    progress = Path(run_dir) / name / "training_metadata.json"
    if not progress.is_file():
        return None
    return json.loads(progress.read_text())["epoch"]


def record_command(run_dir, module, argv=None):
    """Appends `python -m <module> <argv>` (`argv` defaults to the process'
    arguments) to the run's `commands.json`.

    Returns every command that worked on the run, in order (the first one
    started it; later ones resumed or re-evaluated it).
    """
    path = Path(run_dir) / "commands.json"
    commands = json.loads(path.read_text()) if path.is_file() else []
    argv = sys.argv[1:] if argv is None else argv
    commands.append(f"python -m {module} " + shlex.join(argv))
    write_json(path, commands)
    return commands


def hardware():
    """CPU model, logical CPU count and GPUs (from `nvidia-smi`), one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        gpus = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        gpus = ""
    return f"{cpu}; {os.cpu_count()} logical CPUs; GPUs: {gpus or 'none'}"


class KeepBest(keras.callbacks.Callback):
    """Saves the weights with the lowest `monitor` value, atomically, to
    `best.weights.h5`; the best value survives restarts (`best.json`)."""

    def __init__(self, run_dir, monitor):
        super().__init__()
        self.monitor = monitor
        self.weights_path = Path(run_dir) / "best.weights.h5"
        self.record_path = Path(run_dir) / "best.json"
        self.record = {monitor: float("inf"), "epoch": None}
        if self.record_path.is_file() and self.weights_path.is_file():
            self.record = json.loads(self.record_path.read_text())

    def on_epoch_end(self, epoch, logs=None):
        value = float((logs or {}).get(self.monitor, float("inf")))
        if value < self.record[self.monitor]:
            tmp = self.weights_path.with_name("best.part.weights.h5")
            self.model.save_weights(tmp)
            os.replace(tmp, self.weights_path)
            self.record = {self.monitor: value, "epoch": epoch + 1}
            write_json(self.record_path, self.record)


class EpochLog(keras.callbacks.Callback):
    """Prints each epoch's logs and keeps them (`history`); accumulates the
    training wall time across restarts in `train_seconds.json`."""

    def __init__(self, run_dir):
        super().__init__()
        self.path = Path(run_dir) / "train_seconds.json"
        self.previous = 0.0
        if self.path.is_file():
            self.previous = json.loads(self.path.read_text())["seconds"]
        self.start = time.time()
        self.epochs_completed = None
        self.history = []

    def seconds(self):
        return self.previous + time.time() - self.start

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_completed = epoch + 1
        write_json(self.path, {"seconds": self.seconds()})
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.history.append({"epoch": epoch + 1, **logs})
        items = " ".join(f"{k}={v:.4g}" for k, v in sorted(logs.items()))
        print(f"epoch {epoch + 1} [{self.seconds():.0f}s] {items}", flush=True)


class ResumeState(keras.callbacks.Callback):
    """Keeps what `BackupAndRestore` does not across restarts: the counters
    of stateful callbacks and the model's random states.

    `BackupAndRestore` restores the weights, the optimizer (learning rate
    included) and the epoch, but `EarlyStopping` and `ReduceLROnPlateau`
    start a resumed `fit` with a fresh patience and no best value (a run
    interrupted often would decay and stop later), and the weights file
    has no `SeedGenerator` state, so every restart replays the dropout
    masks and latent noise of the run's first epochs. This callback saves
    the callbacks' `wait`, `best` and `cooldown_counter`, and every seed
    generator state of the model, after each epoch in `<name>.json`
    (keyed by the number of completed epochs, the last three kept), and
    puts back those of the epoch `fit` resumes from. Put it after the
    callbacks it keeps.

    Args:
        run_dir: the run folder.
        callbacks: dict of name -> callback whose counters are kept.
        name: the state file's name, one per `fit` of a run (as the
            backup's). Defaults to `"callback_state"`.
    """

    ATTRIBUTES = ("wait", "best", "cooldown_counter")
    RANDOM = "random_states"  # the key of the model's seed generator states

    def __init__(self, run_dir, callbacks, name="callback_state"):
        super().__init__()
        self.path = Path(run_dir) / f"{name}.json"
        self.callbacks = callbacks

    def _random_states(self):
        # Each `keras.random.SeedGenerator` keeps its state in a variable of
        # this name; `model.variables` lists them in a fixed order.
        return [v for v in self.model.variables if v.name == "seed_generator_state"]

    def _snapshot(self):
        state = {}
        for name, callback in self.callbacks.items():
            state[name] = {}
            for attribute in self.ATTRIBUTES:
                if hasattr(callback, attribute):
                    value = getattr(callback, attribute)
                    state[name][attribute] = None if value is None else float(value)
        state[self.RANDOM] = [keras.ops.convert_to_numpy(v).tolist() for v in self._random_states()]
        return state

    def _saved(self):
        return json.loads(self.path.read_text()) if self.path.is_file() else {}

    def _restore(self, state):
        for name, callback in self.callbacks.items():
            for attribute, value in state.get(name, {}).items():
                if attribute != "best" and value is not None:
                    value = int(value)
                setattr(callback, attribute, value)
        variables = self._random_states()
        values = state.get(self.RANDOM)
        if values is None or len(values) != len(variables):
            print("No random state saved for this model: its seeds restart.", flush=True)
            return
        for variable, value in zip(variables, values):
            variable.assign(np.asarray(value, dtype=variable.dtype))

    def on_train_begin(self, logs=None):
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        # `epoch` of the first call is the number of epochs the backup
        # resumed from (the previous one when the latest was unreadable).
        if not self._first_epoch:
            return
        self._first_epoch = False
        if epoch == 0:
            return
        state = self._saved().get(str(epoch))
        if state is None:
            print(
                f"No state saved for epoch {epoch}: early stopping and learning-rate "
                "decay restart their patience, and the model its seeds.",
                flush=True,
            )
            return
        self._restore(state)

    def on_epoch_end(self, epoch, logs=None):
        saved = self._saved()
        saved[str(epoch + 1)] = self._snapshot()
        recent = sorted(saved, key=int)[-3:]
        write_json(self.path, {key: saved[key] for key in recent})
