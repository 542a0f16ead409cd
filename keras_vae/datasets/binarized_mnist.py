"""Statically binarized MNIST (Salakhutdinov & Murray 2008; Larochelle & Murray 2011).

The standard 50,000 / 10,000 / 10,000 split of the fixed binarization used
to report log-likelihoods (Burda et al. 2016 and most VAE papers).
"""

import numpy as np

from keras_vae.datasets.data_dir import cache_dir, find_file
from keras_vae.datasets.download import download

URL = (
    "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
    "binarized_mnist_{split}.amat"
)
SIZES = {"train": 50000, "valid": 10000, "test": 10000}
RELATIVE_PATH = "binarized_mnist/binarized_mnist.npz"


def _download_npz():
    """Fetches the three `.amat` text files and stores them as one `.npz`."""
    arrays = {}
    for split in SIZES:
        amat = download(
            URL.format(split=split),
            cache_dir() / "binarized_mnist" / f"binarized_mnist_{split}.amat",
            "binarized_mnist",
        )
        arrays[split] = np.loadtxt(amat, dtype=np.uint8)
    path = cache_dir() / RELATIVE_PATH
    tmp = path.with_suffix(".part.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


def load_binarized_mnist(split):
    """One split: images `(n, 28, 28, 1)` float32 in `{0, 1}`, labels `None`."""
    if split not in SIZES:
        raise ValueError(f"binarized_mnist has splits {sorted(SIZES)}, not {split!r}.")
    path = find_file(RELATIVE_PATH) or _download_npz()
    with np.load(path) as data:
        rows = data[split]
    if rows.shape != (SIZES[split], 784) or rows.max() > 1:
        raise ValueError(
            f"{path} is corrupt: split {split!r} has shape {rows.shape}, "
            f"expected ({SIZES[split]}, 784) binary rows."
        )
    return rows.reshape(-1, 28, 28, 1).astype("float32"), None
