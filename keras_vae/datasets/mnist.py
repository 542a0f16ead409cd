"""MNIST (LeCun et al. 1998) from the standard IDX files."""

import gzip
import hashlib

import numpy as np

from keras_vae.datasets.data_dir import cache_dir, find_file
from keras_vae.datasets.download import download

URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
# MD5 of the decompressed files, as published with the official release.
FILES = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
SPLITS = {"train": "train", "test": "t10k"}


def _read_idx(filename):
    path = find_file(f"mnist/{filename}")
    if path is None:
        path = download(URL + filename, cache_dir() / "mnist" / filename, "mnist")
    raw = gzip.decompress(path.read_bytes())
    if hashlib.md5(raw).hexdigest() != FILES[filename]:
        raise ValueError(
            f"{path} is corrupt: its content does not match the official "
            "MNIST checksum. Delete it and load again."
        )
    offset = 16 if "images" in filename else 8
    return np.frombuffer(raw, dtype=np.uint8, offset=offset)


def load_mnist(split):
    """One split of MNIST: images `(n, 28, 28, 1)` float32 in `[0, 1]`, labels."""
    if split not in SPLITS:
        raise ValueError(f"MNIST has splits {sorted(SPLITS)}, not {split!r}.")
    prefix = SPLITS[split]
    images = _read_idx(f"{prefix}-images-idx3-ubyte.gz").reshape(-1, 28, 28, 1)
    labels = _read_idx(f"{prefix}-labels-idx1-ubyte.gz").astype("int64")
    return images.astype("float32") / 255.0, labels
