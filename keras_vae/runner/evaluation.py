"""Importance-sampled log-likelihoods cached per chunk in the run folder."""

import os
import time
from pathlib import Path

import numpy as np


def cached_log_likelihood(model, x, num_samples, seed, run_dir, prefix="ll", chunk=500):
    """`model.log_likelihood(x, num_samples, seed)`, computed in chunks of
    `chunk` examples, each saved as it is done, so an interrupted
    evaluation continues where it stopped.

    The cache is `<prefix>_k<num_samples>_n<len(x)>_chunk<chunk>.npz` in
    `run_dir`; it also holds each chunk's seconds. Prints one line per
    chunk with the running mean.

    Returns:
        `(log_px, seconds)`: the per-example log-likelihoods (NumPy) and the
        seconds spent on them over every process.

    Example:

    >>> from keras_vae.runner import cached_log_likelihood
    >>> # log_px, seconds = cached_log_likelihood(model, x_test, 1000, 0, run_dir)
    """
    cache = Path(run_dir) / f"{prefix}_k{num_samples}_n{len(x)}_chunk{chunk}.npz"
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
