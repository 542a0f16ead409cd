"""Downloads with a fast, clear failure when offline."""

import os
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from keras_vae.datasets.data_dir import data_dirs


class DatasetNotFoundError(RuntimeError):
    """A data set has no local copy and could not be downloaded."""


def _not_found(name, url, error):
    searched = ", ".join(str(d) for d in data_dirs())
    return DatasetNotFoundError(
        f"Data set {name!r}: no local copy was found (searched {searched}) "
        f"and downloading {url} failed ({error}). Set KERAS_VAE_DATA_DIR "
        "(or call keras_vae.datasets.set_data_dir) to a folder holding "
        "the files, or connect to the internet."
    )


def check_connection(url, name, timeout=5.0):
    """Raises `DatasetNotFoundError` within `timeout` s if `url`'s host is
    unreachable, so offline machines fail fast instead of retrying."""
    host = urllib.parse.urlparse(url).hostname
    port = 443 if url.startswith("https") else 80
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise _not_found(name, url, error) from error


def download(url, destination, name, timeout=10.0):
    """Downloads `url` to `destination` atomically; fails fast offline.

    A short connection probe runs first, so a machine without network gets
    an error within seconds instead of minutes of retries.
    """
    destination = Path(destination)
    check_connection(url, name, timeout=min(timeout, 5.0))
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=destination.parent, suffix=".part")
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(url, timeout=timeout) as response,
            ):
                while chunk := response.read(1 << 20):
                    out.write(chunk)
            os.replace(tmp, destination)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    except (OSError, urllib.error.URLError) as error:
        raise _not_found(name, url, error) from error
    return destination
