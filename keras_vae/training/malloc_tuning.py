"""glibc `malloc` settings that keep a training step's buffers in the heap.

On the JAX and PyTorch backends, running on the CPU, every training step
allocates its large work buffers afresh: XLA:CPU one buffer for all of a
step's temporaries (85 MB for issue 24's ARCH network at batch 128),
PyTorch one per large activation. glibc serves such blocks with `mmap`
(blocks of 32 MB or more always; from a thread's own arena, any block
over 64 MB) and gives them back with `munmap` when freed, so the next step
takes a page fault for every 4 KiB it touches again: about 22,000 faults
per ARCH step on JAX, a quarter of the process's CPU time spent in the
kernel. TensorFlow has its own allocator and does not do this.

`tune_malloc()` and `keep_freed_blocks()` set three `mallopt` parameters
so that freed blocks stay in the heap and are reused:

- `M_ARENA_MAX = 1`: every thread allocates from the main heap, which can
  grow past 64 MB (XLA allocates from its own threads);
- `M_MMAP_MAX = 0`: no block is served by `mmap`;
- `M_TRIM_THRESHOLD = 1 GiB`: free memory at the top of the heap is given
  back to the system only beyond 1 GiB.

`keras_vae` calls `tune_malloc()` when it is imported, on the JAX and
PyTorch backends only (JAX's CPU client picks its threads' arenas when it
starts, so import `keras_vae` before running JAX computations for the
setting to reach them). On PyTorch it sets all three; on JAX only the
first, and the JAX train step calls `keep_freed_blocks()` for the other
two once its first call has compiled it: XLA's compiler, run without
`mmap`, left the heap fragmented and the process's peak RSS about 40%
higher. The cost that remains: memory freed inside the heap is reused by
the process but not given back to the system, so every zoo model's `fit`
gives the heap's free pages back when it starts and when it ends
(`release_free_memory()`, `malloc_trim`); and on JAX the peak RSS of a
run depends on how the heap happens to be laid out (ARCH: 725-1,322 MiB
from process to process, against 896-933 with glibc's defaults).

Measured on the 2-core development CPU (`benchmarks/malloc_tuning.py`,
benchmarks/RESULTS.md). Nothing happens outside Linux with glibc, and
`KERAS_VAE_MALLOC_TUNING=0` turns it off.
"""

import ctypes
import functools
import os
import platform

MALLOC_TUNING_ENV = "KERAS_VAE_MALLOC_TUNING"
TRIM_THRESHOLD = 1 << 30

# mallopt parameter numbers, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

_BACKENDS = ("jax", "torch")

# Whether `after_first_compile()` still has `keep_freed_blocks()` to call
# (set by `tune_malloc` on JAX).
_pending = {"keep_freed_blocks": False}


@functools.cache
def _glibc():
    """The process's C library if it is glibc, else `None` (looked up once:
    `platform.libc_ver()` reads the Python executable, and `fit` asks
    twice per call)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def tune_malloc(backend=None):
    """Sets `malloc` to keep freed blocks in the heap (see the module):
    `M_ARENA_MAX = 1`, and on PyTorch `keep_freed_blocks()` too.

    Args:
        backend: the Keras backend name; `None` reads it from Keras. Only
            `"jax"` and `"torch"` are tuned.

    Returns:
        Whether the settings were applied.

    Example:

    >>> tune_malloc("tensorflow")  # TensorFlow has its own allocator
    False
    """
    if backend is None:
        import keras

        backend = keras.backend.backend()
    if backend not in _BACKENDS or os.environ.get(MALLOC_TUNING_ENV) == "0":
        return False
    libc = _glibc()
    if libc is None or libc.mallopt(_M_ARENA_MAX, 1) != 1:
        return False
    if backend == "torch":
        return keep_freed_blocks()
    _pending["keep_freed_blocks"] = True
    return True


def compile_pending():
    """Whether `after_first_compile()` has yet to call `keep_freed_blocks()`."""
    return _pending["keep_freed_blocks"]


def after_first_compile():
    """The first time it runs after `tune_malloc("jax")`: gives back what
    compiling freed (`release_free_memory()`), then `keep_freed_blocks()`.
    The JAX train step calls it once its first call (which compiles it)
    has returned. Afterwards it does nothing."""
    if _pending["keep_freed_blocks"]:
        _pending["keep_freed_blocks"] = False
        release_free_memory()
        keep_freed_blocks()


def keep_freed_blocks():
    """`M_MMAP_MAX = 0` and `M_TRIM_THRESHOLD = 1 GiB` (see the module).

    Returns:
        Whether both were applied (`False` outside glibc, or with
        `KERAS_VAE_MALLOC_TUNING=0`).
    """
    libc = _glibc()
    if libc is None or os.environ.get(MALLOC_TUNING_ENV) == "0":
        return False
    settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)


def release_free_memory():
    """Gives the heap's free pages back to the system (`malloc_trim(0)`).

    Returns:
        Whether glibc released any memory (`False` outside glibc).

    Example:

    >>> isinstance(release_free_memory(), bool)
    True
    """
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
