"""glibc `malloc` settings for training on JAX and PyTorch
(`keras_vae.training.malloc_tuning`): applied at import on those two
backends only, completed by the JAX train step after its first compile,
and freed blocks are then reused without page faults."""

import platform
import resource

import keras
import numpy as np

from keras_vae.models import VAE
from keras_vae.training import MALLOC_TUNED, malloc_tuning

BACKEND = keras.backend.backend()
BLOCK = 96 << 20  # above glibc's largest mmap threshold (32 MB) and a thread heap (64 MB)


def faults_touching_a_fresh_block():
    """Minor page faults taken to fill a freshly allocated 96 MB block
    (in pages of the base size: NumPy's transparent huge pages off)."""
    from numpy._core.multiarray import _set_madvise_hugepage

    huge_pages = _set_madvise_hugepage(False)
    try:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = np.ones(BLOCK, dtype=np.uint8)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        del block
    finally:
        _set_madvise_hugepage(huge_pages)
    return faults


def test_applied_on_jax_and_torch_only(monkeypatch):
    # CI runs on Linux with glibc: the settings must take there.
    assert platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert MALLOC_TUNED == (BACKEND in ("jax", "torch"))
    assert not malloc_tuning.tune_malloc("tensorflow")
    monkeypatch.setitem(malloc_tuning._pending, "keep_freed_blocks", False)
    monkeypatch.setenv(malloc_tuning.MALLOC_TUNING_ENV, "0")
    assert not malloc_tuning.tune_malloc(BACKEND)
    assert not malloc_tuning.keep_freed_blocks()
    assert not malloc_tuning.compile_pending()


def test_fit_leaves_freed_blocks_in_the_heap():
    x = (np.random.default_rng(0).random((16, 8, 8, 1)) < 0.5).astype("float32")
    model = VAE(input_shape=(8, 8, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,))
    model.compile(optimizer="adam")
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    # The JAX train step's first call completed the settings.
    assert not malloc_tuning.compile_pending()
    faults_touching_a_fresh_block()  # the heap grows to hold one such block
    reused = faults_touching_a_fresh_block()
    pages = BLOCK // resource.getpagesize()
    if MALLOC_TUNED:
        # Served again from the heap: its pages are already there.
        assert reused < pages // 20
    else:
        # TensorFlow: glibc's defaults, `mmap` and a fault per page.
        assert reused > pages // 2
