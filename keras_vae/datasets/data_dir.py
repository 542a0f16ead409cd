"""Where the data sets live: a setting, an environment variable, defaults."""

import os
from pathlib import Path

ENV_VAR = "KERAS_VAE_DATA_DIR"
_data_dir = None


def set_data_dir(path):
    """Sets the data directory for this process (overrides the env var).

    Pass `None` to go back to `KERAS_VAE_DATA_DIR` and the defaults.
    """
    global _data_dir
    _data_dir = None if path is None else Path(path).expanduser()


def data_dirs():
    """The folders searched for local copies of the data, in order.

    1. the folder given to `set_data_dir`;
    2. `$KERAS_VAE_DATA_DIR`;
    3. `../shared/data` from the working directory, and beside the project
       checkout, when present;
    4. the download cache, `~/.keras/datasets/keras_vae` (or
       `$KERAS_HOME/datasets/keras_vae`).
    """
    candidates = []
    if _data_dir is not None:
        candidates.append(_data_dir)
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]).expanduser())
    checkout = Path(__file__).resolve().parents[2]
    for base in (Path.cwd(), checkout):
        shared = (base / ".." / "shared" / "data").resolve()
        if shared.is_dir() and shared not in candidates:
            candidates.append(shared)
    candidates.append(cache_dir())
    return candidates


def cache_dir():
    """Folder for downloaded data: `$KERAS_HOME/datasets/keras_vae`."""
    keras_home = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    return Path(keras_home).expanduser() / "datasets" / "keras_vae"


def find_file(relative_path):
    """The first existing `<data dir>/<relative_path>`, or `None`."""
    for folder in data_dirs():
        path = folder / relative_path
        if path.is_file():
            return path
    return None
