"""The run folder and the files the runner keeps in it.

A run folder holds everything a run needs to continue after a kill: the
`BackupAndRestore` checkpoints (one folder per stage), the best weights,
the callbacks' counters, the accumulated training time, the cached
evaluation chunks and the commands that worked on the run; `run.lock`
(the pid of the run using it: `locked`) and `run.json` (the recipe and
options it was started with: `check_identity`).
"""

import contextlib
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import keras

from keras_vae import presets


def write_json(path, obj):
    """Writes `obj` as JSON to `path` atomically (a temporary file renamed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w") as f:
        f.write(json.dumps(obj, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename (a power cut)
    os.replace(tmp, path)


def read_json(path, default=None):
    """The JSON object in `path`, or `default` when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else default


class RunFolderError(RuntimeError):
    """A run folder that this run must not use: another live run holds
    it, or it was started with other options."""


LOCK_FILE = "run.lock"
IDENTITY_FILE = "run.json"
# Options that say how to run, not what: a resumed run may change them.
RUNNER_ONLY_OPTIONS = ("evaluate_only", "switch_backend")


@contextlib.contextmanager
def locked(run_dir):
    """Holds the run folder for this process while the block runs.

    The lock is `run_dir / "run.lock"`, holding the process id. A lock of a
    live process is refused (`RunFolderError`: two runs writing one run
    folder would mix their checkpoints); one left by a dead process (a
    kill) is taken over.

    Example:

    >>> import tempfile
    >>> from keras_vae.runner import files
    >>> with files.locked(tempfile.mkdtemp()):
    ...     pass
    """
    path = Path(run_dir) / LOCK_FILE
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = None  # torn, or just removed: taken over below
            if pid is not None and presets._pid_alive(pid):
                raise RunFolderError(
                    f"Run folder {str(run_dir)!r} is in use by process {pid} (another run "
                    f"of this recipe); wait for it to finish, stop it, or pass another "
                    f"--run-dir (if no such run is going, delete {str(path)!r})."
                ) from None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        break
    else:
        raise RunFolderError(f"Could not lock run folder {str(run_dir)!r}.")
    try:
        yield Path(run_dir)
    finally:
        try:
            if int(path.read_text().split()[0]) == os.getpid():
                path.unlink()
        except (OSError, ValueError, IndexError):
            pass


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        flat = {}
        for key, value in obj.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): obj}


def check_identity(run_dir, recipe, key, options=None):
    """Refuses to resume a run folder started with another recipe or options.

    The first run in `run_dir` records its `recipe`, its run `key` (what
    else changes the run, e.g. the epochs) and its `options` in
    `run.json`; a later run there must have the same recipe and key, or
    `RunFolderError` names what differs (a resumed run would otherwise
    record options it did not train with). A folder without `run.json`
    (made by an older version) is taken as is.

    The backend is part of the identity too: a run started on another
    backend continues here only with `options.switch_backend`
    (`--switch-backend`), and `run.json` then records the backends used,
    in order, with each one's hardware (`backends_used`).
    """
    path = Path(run_dir) / IDENTITY_FILE
    given = {} if options is None else vars(options)
    options = {
        k: v
        for k, v in sorted(given.items())
        if isinstance(v, (str, int, float, bool, list, type(None)))
    }
    identity = json.loads(
        json.dumps(
            {"recipe": recipe, "key": key, "backend": keras.backend.backend()}, sort_keys=True
        )
    )
    try:
        saved = read_json(path)
    except ValueError:
        saved = None  # torn: written again below
    if saved is None:
        first = {"backend": identity["backend"], "hardware": hardware()}
        write_json(path, {**identity, "options": options, "backends": [first]})
        return
    differing = []
    old, new = _flatten(saved.get("recipe", {})), _flatten(identity["recipe"])
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            differing.append(f"{name} {old.get(name)!r} -> {new.get(name)!r}")
    switch = saved.get("backend") != identity["backend"]
    if switch and not options.get("switch_backend"):
        differing.append(
            f"backend {saved.get('backend')!r} -> {identity['backend']!r}: pass "
            "--switch-backend to continue it on this backend"
        )
    if saved.get("key") != identity["key"]:
        old_options = saved.get("options", {})
        named = [
            f"--{name.replace('_', '-')} {old_options.get(name)!r} -> {value!r}"
            for name, value in options.items()
            if name not in RUNNER_ONLY_OPTIONS and old_options.get(name) != value
        ]
        differing.extend(named or [f"run options {saved.get('key')!r} -> {identity['key']!r}"])
    if differing:
        raise RunFolderError(
            f"Run folder {str(run_dir)!r} holds a run with other options ("
            + "; ".join(differing)
            + "): rerun with its options to resume it, or start fresh with another "
            f"--run-dir (or delete {str(run_dir)!r})."
        )
    if switch:
        print(
            f"Run folder {str(run_dir)!r} was trained on {saved.get('backend')!r}; "
            f"continuing on {identity['backend']!r} (--switch-backend).",
            flush=True,
        )
        used = _backends(saved) + [{"backend": identity["backend"], "hardware": hardware()}]
        write_json(path, {**saved, "backend": identity["backend"], "backends": used})


def backends_used(run_dir):
    """The backends a run folder was trained on, in order, as recorded by
    `check_identity`: a list of `{"backend", "hardware"}` dicts (the first
    entry's hardware is recorded only by runs started since
    `--switch-backend` exists); `[]` without `run.json`.

    Example:

    >>> import tempfile
    >>> backends_used(tempfile.mkdtemp())
    []
    """
    return _backends(read_json(Path(run_dir) / IDENTITY_FILE) or {})


def _backends(saved):
    """The backends list of a `run.json` dict; a run folder from before the
    list existed has only its one `backend`."""
    if "backends" in saved:
        return saved["backends"]
    return [{"backend": saved["backend"]}] if "backend" in saved else []


def is_preset_folder(path):
    """Whether `path` is a folder that a preset writer may replace: a
    preset folder (`config.json`, `model.weights.h5`, `metadata.json`) or
    an empty folder."""
    path = Path(path)
    if not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    return not names or set(presets.REGISTERED_FILES) <= names


def check_output(output, overwrite=True):
    """Checks, before any training, that a preset folder can be written
    to `output`; creates its parent folders.

    An existing `output` is replaced only when `overwrite` and it is a
    preset folder (or empty): `FileExistsError` otherwise, so that no other
    folder is ever deleted. `OSError` (e.g. `PermissionError`) when the
    parent folder cannot be created or written.
    """
    output = Path(output)
    presets.recover_preset_dir(output)
    if output.exists() or output.is_symlink():
        if not overwrite:
            raise FileExistsError(
                f"Output {str(output)!r} already exists; pass --overwrite to replace it."
            )
        if not is_preset_folder(output):
            raise FileExistsError(
                f"Output {str(output)!r} exists and is not a preset folder (config.json, "
                "model.weights.h5, metadata.json): refusing to replace it; pick another "
                "--output."
            )
    parent = output.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent, prefix=".keras-vae-write-test-"):
            pass
    except OSError as error:
        raise OSError(
            f"Cannot write the output {str(output)!r}: {error.strerror or error} "
            f"({str(parent)!r})."
        ) from None


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
    repair_backup(run_dir, name)
    return keras.callbacks.BackupAndRestore(
        str(Path(run_dir) / name), double_checkpoint=True, delete_checkpoint=False
    )


def _epoch_in(path):
    """The epoch in a backup's metadata file `path`; `None` when it is
    missing, empty or torn."""
    try:
        return int(json.loads(Path(path).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def repair_backup(run_dir, name="backup"):
    """Puts back the previous checkpoint of a backup whose latest metadata
    file is empty or torn.

    `BackupAndRestore` writes the latest weights, then truncates and
    writes `training_metadata.json`: a kill in between leaves an empty (or
    torn) metadata file, which Keras cannot read. The intact previous
    checkpoint (`*.bkp`, kept by `double_checkpoint=True`) then becomes the
    latest again; without one, the backup is removed (the run starts over).
    """
    folder = Path(run_dir) / name
    metadata = folder / "training_metadata.json"
    if not metadata.exists() or _epoch_in(metadata) is not None:
        return
    weights = folder / "latest.weights.h5"
    previous = (Path(f"{weights}.bkp"), Path(f"{metadata}.bkp"))
    if previous[0].is_file() and _epoch_in(previous[1]) is not None:
        print(
            f"The latest checkpoint's metadata in {folder} is torn: resuming from the "
            f"previous checkpoint (epoch {_epoch_in(previous[1])}).",
            flush=True,
        )
        for source, target in zip(previous, (weights, metadata)):
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
    else:
        print(f"The only checkpoint in {folder} is torn: starting over.", flush=True)
        shutil.rmtree(folder, ignore_errors=True)


def remove_backup(run_dir, name="backup"):
    """Deletes a finished run's backup (see `backup_and_restore`)."""
    shutil.rmtree(Path(run_dir) / name, ignore_errors=True)


def backed_up_epochs(run_dir, name="backup"):
    """Epochs completed by the run's `backup_and_restore` backup, or `None`
    when it has none (this is where Keras' format is read)."""
    repair_backup(run_dir, name)
    return _epoch_in(Path(run_dir) / name / "training_metadata.json")


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
