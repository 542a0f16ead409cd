"""Presets: pretrained models saved as folders with verified weights.

A preset is a folder with three files:

- `config.json`: the model, as `keras.saving.serialize_keras_object`;
- `model.weights.h5`: its weights;
- `metadata.json`: what the model is and how it was made (description,
  parameter count, data set and split, the exact training command, wall
  time and hardware, the metrics it reached, Keras version and backend)
  and the sha256 of the two other files, checked on every load.

`from_preset` takes the name of a built-in preset, the path of a local
preset folder, or the http(s) URL of a `.tar.gz` / `.zip` archive of one,
downloaded once into the Keras cache.

The built-in presets are data the library holds: `preset_files/registry.json`
maps each name to its description, class and the sha256 of its three files.
Their files ship inside the package (`preset_files/<name>/`) or, for an
entry with a `url`, are downloaded once into the Keras cache. Either way each
file is checked against the registry's hash, so a folder cannot vouch for
itself, and a built-in name always means the built-in preset: a folder of
the same name in the working directory is only used when named as a path
(`./vae_binarized_mnist`).
"""

import hashlib
import json
import os
import platform
import shutil
import tarfile
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import keras

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
HASHED_FILES = (CONFIG_FILE, WEIGHTS_FILE)
# What the registry pins of a built-in preset: every file that is loaded.
REGISTERED_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE)
REGISTRY_FILE = "registry.json"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
# Limits of a preset download: a slow or hostile server cannot hang a load
# or fill the disk. Seconds for the whole download, bytes downloaded, and
# bytes that the archive may unpack to.
DOWNLOAD_DEADLINE_SECONDS = 30 * 60
SOCKET_TIMEOUT_SECONDS = 60
MAX_DOWNLOAD_BYTES = 2 * 2**30
MAX_UNPACKED_BYTES = 4 * 2**30


class PresetIntegrityError(ValueError):
    """A preset file's sha256 differs from the one it must have."""


def keras_home():
    """The Keras cache folder: `$KERAS_HOME`, else `~/.keras`."""
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()


def download_cache_dir():
    """Where downloaded preset archives are unpacked (once per URL)."""
    return keras_home() / "keras_vae" / "presets"


def zoo_dir():
    """The folder of the built-in presets' files (inside the package)."""
    return Path(__file__).resolve().parent / "preset_files"


def registry():
    """The built-in presets: name -> entry, read from the package.

    Each entry holds `description`, `class_name`, `files` (file name ->
    sha256) and optionally `url` and `archive_sha256`: where the files are
    downloaded from when the package does not hold them.

    Example:

    >>> from keras_vae import presets
    >>> entry = presets.registry()["vae_binarized_mnist"]
    >>> sorted(entry["files"])
    ['config.json', 'metadata.json', 'model.weights.h5']
    """
    with open(zoo_dir() / REGISTRY_FILE) as f:
        return json.load(f)


def list_presets():
    """Names of the built-in presets, sorted.

    Returns:
        list of str.

    Example:

    >>> import keras_vae as kv
    >>> "vae_binarized_mnist" in kv.list_presets()
    True
    """
    return sorted(registry())


def register_builtin(name):
    """Records the files of `zoo_dir() / name` as built-in preset `name`.

    For the zoo's runner, after it wrote a built-in preset's folder in a
    checkout: the registry entry's hashes, description and class become
    those of the folder (its `url`, if any, is dropped: the archive there
    holds the old files). The registry file is replaced atomically.

    Args:
        name: str. The preset's name, the folder's name in `zoo_dir()`.

    Returns:
        The new registry entry, as a dict.
    """
    folder = zoo_dir() / name
    metadata = verify_preset(folder)
    entry = {
        "description": metadata.get("description", ""),
        "class_name": metadata.get("class_name", ""),
        "files": {file: sha256(folder / file) for file in REGISTERED_FILES},
    }
    entries = registry()
    entries[name] = entry
    path = zoo_dir() / REGISTRY_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n")
    os.replace(tmp, path)
    return entry


def sha256(path):
    """Hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_metadata(preset):
    """The `metadata.json` of a preset (name, folder or URL) as a dict,
    after checking the preset's files."""
    return verify_preset(resolve_preset(preset), expected=_expected_hashes(preset))


def resolve_preset(preset, archive_sha256=None):
    """The local folder of a preset name, folder path or archive URL.

    Args:
        preset: str or path. A built-in name, a folder, or an http(s) URL.
        archive_sha256: optional str. For a URL: the archive's expected sha256.
    """
    preset = os.fspath(preset)
    if preset.startswith(("http://", "https://")):
        return _download_preset(preset, archive_sha256)
    if archive_sha256 is not None:
        raise ValueError("`archive_sha256` pins a URL preset's archive; pass it with a URL only.")
    entries = registry()
    if preset in entries:
        return _builtin_folder(preset, entries[preset])
    path = Path(preset).expanduser()
    if path.is_dir():
        return path
    looks_like_path = os.sep in preset or preset.startswith(".")
    if looks_like_path or path.suffix:
        raise ValueError(f"Preset folder {preset!r} does not exist.")
    raise ValueError(
        f"Unknown preset {preset!r}. Known presets: {list_presets()}. A local "
        "preset folder or an http(s) URL of a .tar.gz / .zip archive also work."
    )


def _expected_hashes(preset):
    """The registry's hashes when `preset` is a built-in name, else `None`."""
    entry = registry().get(os.fspath(preset))
    return None if entry is None else entry["files"]


def _builtin_folder(name, entry):
    """The folder of built-in preset `name`: the package's own copy (a
    checkout's files), else the entry's URL downloaded into the cache."""
    folder = zoo_dir() / name
    if (folder / METADATA_FILE).is_file() or "url" not in entry:
        return folder
    return _download_preset(entry["url"], entry.get("archive_sha256"))


def verify_preset(folder, expected=None):
    """Checks the files of a preset folder.

    Args:
        folder: path of the preset folder.
        expected: optional dict of file name -> sha256 that the files must
            have (the registry's, for a built-in preset). The hashes in the
            folder's own `metadata.json` are checked in any case.

    Returns:
        The folder's metadata, as a dict.

    Raises:
        ValueError: a file is missing or the metadata has no hashes.
        PresetIntegrityError: a file's sha256 differs from what it must be.
    """
    folder = Path(folder)
    for name in (METADATA_FILE, *HASHED_FILES):
        if not (folder / name).is_file():
            raise ValueError(f"Preset folder {folder} has no {name}.")
    for name, wanted in (expected or {}).items():
        actual = sha256(folder / name)
        if actual != wanted:
            raise PresetIntegrityError(
                f"The sha256 of {folder / name} is {actual}, but the keras_vae "
                f"registry says {wanted}: the file was modified or is corrupt. "
                "Refusing to load it."
            )
    with open(folder / METADATA_FILE) as f:
        metadata = json.load(f)
    hashes = metadata.get("sha256")
    if not isinstance(hashes, dict):
        raise ValueError(f"{folder / METADATA_FILE} has no 'sha256' entry.")
    for name in HASHED_FILES:
        expected_hash = hashes.get(name)
        if expected_hash is None:
            raise ValueError(f"{folder / METADATA_FILE} has no sha256 for {name}.")
        actual = sha256(folder / name)
        if actual != expected_hash:
            raise PresetIntegrityError(
                f"The sha256 of {folder / name} is {actual}, but the preset's "
                f"metadata.json says {expected_hash}: the file was modified or is "
                "corrupt. Refusing to load it."
            )
    return metadata


def from_preset(preset, cls=None, archive_sha256=None):
    """Loads a pretrained model from a preset.

    Before anything is deserialized, the sha256 of `config.json` and
    `model.weights.h5` is checked against `metadata.json`, and for a
    built-in preset every file against the hashes the library holds.

    Args:
        preset: str. The name of a built-in preset (see `list_presets()`),
            the path of a preset folder, or the http(s) URL of a `.tar.gz` or
            `.zip` archive of one (downloaded once into the Keras cache).
        cls: optional class. The loaded model must be an instance of it;
            `ModelClass.from_preset` passes its own class.
        archive_sha256: optional str. For a URL preset: the sha256 the archive
            must have (a mismatch is refused before anything is unpacked).

    Returns:
        The model, with its weights loaded. Its metadata is in
        `model.preset_metadata`.

    Example:

    >>> import keras_vae as kv
    >>> model = kv.from_preset("vae_binarized_mnist")
    >>> model.latent_dim
    32
    """
    folder = resolve_preset(preset, archive_sha256)
    metadata = verify_preset(folder, expected=_expected_hashes(preset))
    with open(folder / CONFIG_FILE) as f:
        config = json.load(f)
    if cls is not None:
        _check_class(config, cls, preset)
    model = keras.saving.deserialize_keras_object(config)
    if cls is not None and not isinstance(model, cls):
        raise ValueError(
            f"Preset {preset!r} holds a {type(model).__name__}, which is not a {cls.__name__}."
        )
    model.load_weights(folder / WEIGHTS_FILE)
    model.preset_metadata = metadata
    return model


def _check_class(config, cls, preset):
    """Fails before building when the config names an unrelated class."""
    name = config.get("class_name") if isinstance(config, dict) else None
    registered = (
        keras.saving.get_registered_object(config.get("registered_name") or "", custom_objects=None)
        if isinstance(config, dict)
        else None
    )
    if isinstance(registered, type) and not issubclass(registered, cls):
        raise ValueError(
            f"Preset {preset!r} holds a {name}, which is not a subclass of "
            f"{cls.__name__}. Load it with keras_vae.from_preset({preset!r}) "
            f"or {name}.from_preset({preset!r})."
        )


def save_to_preset(model, preset_dir, metadata=None):
    """Writes `model` as a preset folder, atomically.

    The folder gets `config.json`, `model.weights.h5` (the model's weights
    only, no optimizer state) and `metadata.json`: `metadata` completed
    with the parameter count, Keras version, backend, date and the sha256
    of the two other files. The files are written to a temporary folder
    beside `preset_dir`, which then replaces `preset_dir`.

    Args:
        model: a `keras.Model` with `get_config` (e.g. a `VAE`).
        preset_dir: path of the folder to write.
        metadata: optional dict: description, data set, training command,
            metrics... Must be JSON-serializable.

    Returns:
        The metadata written, as a dict.

    Example:

    >>> import keras_vae as kv
    >>> import tempfile, os
    >>> model = kv.VAE(input_shape=(28, 28, 1), latent_dim=2)
    >>> folder = os.path.join(tempfile.mkdtemp(), "my_vae")
    >>> _ = kv.presets.save_to_preset(model, folder, {"description": "demo"})
    >>> sorted(os.listdir(folder))
    ['config.json', 'metadata.json', 'model.weights.h5']
    """
    preset_dir = Path(preset_dir)
    metadata = dict(metadata or {})
    try:
        json.dumps(metadata)
    except TypeError as error:
        raise ValueError(f"`metadata` must be JSON-serializable: {error}") from None
    preset_dir.parent.mkdir(parents=True, exist_ok=True)
    recover_preset_dir(preset_dir)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{preset_dir.name}.tmp-{os.getpid()}-", dir=preset_dir.parent)
    )
    try:
        config = keras.saving.serialize_keras_object(model)
        # A preset is the model, not a training session: loading it must
        # not compile it (the weights file holds no optimizer state).
        config.pop("compile_config", None)
        with open(tmp / CONFIG_FILE, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")
        _save_weights_only(model, tmp / WEIGHTS_FILE)
        metadata.setdefault("class_name", type(model).__name__)
        metadata.setdefault("parameter_count", int(model.count_params()))
        metadata.setdefault("keras_version", keras.__version__)
        metadata.setdefault("backend", keras.backend.backend())
        metadata.setdefault("python", platform.python_version())
        metadata.setdefault("saved_utc", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        metadata["sha256"] = {name: sha256(tmp / name) for name in HASHED_FILES}
        with open(tmp / METADATA_FILE, "w") as f:
            json.dump(metadata, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o755)
        _replace_dir(tmp, preset_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return metadata


def _save_weights_only(model, path):
    """Saves the weights without optimizer state (a compiled, trained model
    would otherwise store its optimizer variables too)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        model.save_weights(path)
        return
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    clone.save_weights(path)


def _replace_dir(src, dst):
    """Moves folder `src` to `dst`, replacing `dst`: the old folder is
    renamed aside (`.<name>.old-<pid>`), the new one renamed in, then the
    old one deleted. A kill between the renames leaves the aside folder,
    which `recover_preset_dir` puts back."""
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def _pid_alive(pid):
    """Whether process `pid` exists on this machine."""
    try:
        os.kill(pid, 0)
    except PermissionError:  # exists, another user's
        return True
    except (OSError, OverflowError):
        return False
    return True


def recover_preset_dir(preset_dir):
    """Cleans up after a preset writer that was killed mid-way.

    A writer killed between its renames (see `_replace_dir`) leaves the
    old folder aside and `preset_dir` missing: the old folder is put back.
    Aside and temporary folders of writers no longer running are deleted.
    Called by `save_to_preset` and by the runner before training.
    """
    preset_dir = Path(preset_dir)
    parent = preset_dir.absolute().parent
    if not parent.is_dir():
        return
    leftovers = []
    for kind in ("old", "tmp"):
        for path in parent.glob(f".{preset_dir.name}.{kind}-*"):
            pid = path.name[len(f".{preset_dir.name}.{kind}-") :].split("-")[0]
            if path.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
                leftovers.append((kind, path))
    asides = sorted((p for k, p in leftovers if k == "old"), key=lambda p: p.stat().st_mtime)
    if asides and not preset_dir.exists():
        os.replace(asides.pop(), preset_dir)
    for path in asides + [p for k, p in leftovers if k == "tmp"]:
        shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------
# Archives over http(s).


def _download_preset(url, expected_sha256=None):
    """Downloads and unpacks a preset archive once; returns its folder.

    With `expected_sha256`, the archive must have that hash (checked before
    it is unpacked), and the cache entry is keyed by it too.
    """
    path = urllib.parse.urlparse(url).path
    name = os.path.basename(path)
    suffix = next((s for s in ARCHIVE_SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise ValueError(
            f"A preset URL must point to a {' / '.join(ARCHIVE_SUFFIXES)} archive, got {url!r}."
        )
    key = hashlib.sha256(f"{url} {expected_sha256 or ''}".encode()).hexdigest()[:16]
    root = download_cache_dir()
    target = root / f"{name[: -len(suffix)]}-{key}"
    if (target / METADATA_FILE).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        archive = tmp / name
        _fetch(url, archive)
        if expected_sha256 is not None and sha256(archive) != expected_sha256:
            raise PresetIntegrityError(
                f"The archive downloaded from {url} has sha256 {sha256(archive)}, "
                f"not the expected {expected_sha256}. Refusing to unpack it."
            )
        unpacked = tmp / "unpacked"
        _extract(archive, unpacked)
        folder = _find_preset_folder(unpacked, url)
        verify_preset(folder)
        if target.exists():  # Another process finished first.
            shutil.rmtree(tmp, ignore_errors=True)
            return target
        os.replace(folder, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _fetch(url, path):
    """Downloads `url` to `path` within the deadline and size limit."""
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_SECONDS
    size = 0
    try:
        with (
            urllib.request.urlopen(url, timeout=SOCKET_TIMEOUT_SECONDS) as response,
            open(path, "wb") as f,
        ):
            # `read1` returns what has arrived: a trickle meets the deadline.
            for block in iter(lambda: response.read1(1 << 16), b""):
                size += len(block)
                if size > MAX_DOWNLOAD_BYTES:
                    raise ValueError(
                        f"The preset archive at {url} is larger than the "
                        f"{MAX_DOWNLOAD_BYTES:,}-byte limit; refusing to download more."
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the download took longer than {DOWNLOAD_DEADLINE_SECONDS} s"
                    )
                f.write(block)
    except OSError as error:
        raise OSError(f"Could not download preset {url}: {error}") from error


def _extract(archive, dest):
    """Unpacks a zip or tar archive of plain files and folders into `dest`:
    no path may leave `dest`, no links or devices, no setuid / setgid /
    sticky bits, and at most `MAX_UNPACKED_BYTES` in all."""
    dest.mkdir()
    root = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for member in members:
                _check_member(root, member.filename, archive)
            _check_unpacked_size(sum(m.file_size for m in members), archive)
            zf.extractall(dest)
        return
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise ValueError(f"{archive.name} holds a link or device: {member.name}.")
                _check_member(root, member.name, archive)
                member.mode &= 0o777  # no setuid, setgid or sticky bit
            _check_unpacked_size(sum(m.size for m in members), archive)
            # Python >= 3.10.12 also applies its own "data" filter.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tf.extractall(dest, members=members, **safe)
    except tarfile.TarError as error:
        raise ValueError(f"{archive.name} is not a valid .tar.gz / .zip archive: {error}")


def _check_unpacked_size(total, archive):
    if total > MAX_UNPACKED_BYTES:
        raise ValueError(
            f"{archive.name} unpacks to {total:,} bytes, more than the "
            f"{MAX_UNPACKED_BYTES:,}-byte limit; refusing to unpack it."
        )


def _check_member(root, member, archive):
    resolved = (root / member).resolve()
    if resolved != root and root not in resolved.parents:
        raise ValueError(f"{archive.name} holds a path outside the archive: {member!r}.")


def _find_preset_folder(unpacked, url):
    candidates = [p.parent for p in unpacked.rglob(METADATA_FILE)]
    if len(candidates) != 1:
        raise ValueError(
            f"The archive {url} must hold exactly one preset folder (with "
            f"{METADATA_FILE}); found {len(candidates)}."
        )
    return candidates[0]
