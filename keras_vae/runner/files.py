"""The run folder and the files the runner keeps in it.

A run folder holds everything a run needs to continue after a kill: the
`BackupAndRestore` checkpoints (one folder per stage), the best weights,
the callbacks' counters, the accumulated training time, the cached
evaluation chunks and the commands that worked on the run.
"""

import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import keras

from keras_vae import presets


def write_json(path, obj):
    """Writes `obj` as JSON to `path` atomically (a temporary file renamed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def read_json(path, default=None):
    """The JSON object in `path`, or `default` when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else default


def copy_beside_preset(path, preset_dir):
    """Copies file `path` into `preset_dir` atomically (pictures that sit
    beside a preset's hashed files: `save_to_preset` replaces the whole
    folder, so they are added after it)."""
    target = Path(preset_dir) / Path(path).name
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(Path(path).read_bytes())
    os.replace(tmp, target)


def default_runs_dir():
    """Where run folders go by default: `<KERAS_HOME or ~/.keras>/keras_vae/runs`."""
    return Path(presets.keras_home()) / "keras_vae" / "runs"


def run_folder(name, key, run_dir=None):
    """The run folder of a run named `name`, created if needed.

    `run_dir` when given; otherwise `default_runs_dir() / f"{name}-<hash>"`,
    the hash taken over `key` (the recipe and the options that change the
    run) and the backend, so a rerun of the same command resumes the same
    run and another recipe starts a fresh one.
    """
    if run_dir is None:
        digest = hashlib.sha256(
            json.dumps([key, keras.backend.backend()], sort_keys=True).encode()
        ).hexdigest()[:12]
        run_dir = default_runs_dir() / f"{name}-{digest}"
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
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
    progress = read_json(Path(run_dir) / name / "training_metadata.json")
    return None if progress is None else progress["epoch"]


def record_command(run_dir, command=None):
    """Appends `command` (defaults to `python -m <module> <arguments>` of
    this process) to the run's `commands.json`.

    Returns every command that worked on the run, in order (the first one
    started it; later ones resumed or re-evaluated it).
    """
    if command is None:
        command = shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    path = Path(run_dir) / "commands.json"
    commands = read_json(path, [])
    commands.append(command)
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
