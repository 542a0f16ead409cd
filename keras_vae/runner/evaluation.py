"""Importance-sampled log-likelihoods cached per chunk in the run folder."""

import hashlib
import os
import time
from pathlib import Path

import keras
import numpy as np


def cached_log_likelihood(model, x, num_samples, seed, run_dir, prefix="ll", chunk=500):
    """`model.log_likelihood(x, num_samples, seed)`, computed in chunks of
    `chunk` examples, each saved as it is done, so an interrupted
    evaluation continues where it stopped.

    The cache is `<prefix>_k<num_samples>_n<len(x)>_chunk<chunk>_<key>.npz`
    in `run_dir`, where `<key>` is `fingerprint(model, x, seed)`: a cache
    is reused only by the same weights on the same data with the same seed
    (a re-evaluation after more training computes afresh). It also holds
    each chunk's seconds. Prints one line per chunk with the running mean.

    Returns:
        `(log_px, seconds)`: the per-example log-likelihoods (NumPy) and the
        seconds spent on them over every process.

    Example:

    >>> from keras_vae.runner import cached_log_likelihood
    >>> # log_px, seconds = cached_log_likelihood(model, x_test, 1000, 0, run_dir)
    """
    key = fingerprint(model, x, seed)
    cache = Path(run_dir) / f"{prefix}_k{num_samples}_n{len(x)}_chunk{chunk}_{key}.npz"
    parts = dict(np.load(cache)) if cache.is_file() else {}
    start = time.time()
    starts = range(0, len(x), chunk)
    for begin in starts:
        if str(begin) in parts:
            continue
        chunk_start = time.time()
        parts[str(begin)] = np.asarray(
            model.log_likelihood(x[begin : begin + chunk], num_samples=num_samples, seed=seed)
        )
        parts[f"seconds_{begin}"] = np.array(time.time() - chunk_start)
        tmp = cache.with_name(cache.stem + ".part.npz")
        np.savez(tmp, **parts)
        os.replace(tmp, cache)
        done = np.concatenate([parts[str(b)] for b in starts if str(b) in parts])
        print(
            f"log p(x) k={num_samples}: {min(begin + chunk, len(x))}/{len(x)} "
            f"[{time.time() - start:.0f}s this run] mean so far {np.mean(done):.3f}",
            flush=True,
        )
    log_px = np.concatenate([parts[str(b)] for b in starts])
    seconds = float(sum(parts[f"seconds_{b}"] for b in starts if f"seconds_{b}" in parts))
    return log_px, seconds


def fingerprint(model, x, seed):
    """The first 16 hex digits of a sha256 over the model's weights (their
    shapes, dtypes and values, in order), the data and the seed.

    Example:

    >>> import numpy as np
    >>> import keras_vae as kv
    >>> from keras_vae.runner.evaluation import fingerprint
    >>> model = kv.VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp",
    ...                hidden_dims=(8,), seed=0)
    >>> x = np.zeros((2, 4, 4, 1), "float32")
    >>> fingerprint(model, x, 0) == fingerprint(model, x, 1)
    False
    """
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{weight.path} {value.dtype} {value.shape}".encode())
        digest.update(value.tobytes())
    if isinstance(x, np.ndarray):
        digest.update(f"{x.dtype} {x.shape}".encode())
        digest.update(np.ascontiguousarray(x).tobytes())
    else:  # sentences
        digest.update("\n".join(str(item) for item in x).encode())
    digest.update(f"seed {seed}".encode())
    return digest.hexdigest()[:16]
