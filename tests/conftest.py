import os
from pathlib import Path

# JAX compiles each new model's functions, and some of the suite's programs
# recur (a reloaded copy of a model, a resumed run, a cross-backend worker
# that loads a model twice): JAX's persistent compilation cache, keyed by the
# compiled program, compiles each distinct one once per run
# (tests/models/vae_test.py on JAX: 141 s instead of 173).
# Set before keras imports jax; the subprocesses of the tests (cross-backend
# workers, the CLI, notebooks) inherit it. Only the compile step is cached:
# every function is still traced, and any change to a program misses. One
# folder per pytest process: JAX writes entries in place, unlocked, so two
# concurrent runs must not share one (tests/run_backends.py names each
# run's folder).
_CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / "jax-compilation"
_CACHE /= os.environ.get("KERAS_BACKEND", "default")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# XLA:CPU spends most of a small program's compile time in LLVM's
# optimisation passes, and the suite's programs are small and run a few
# steps: without them a model's first fit compiles about 45% faster, while a
# heavy evaluation runs about 25% slower, with the same results. XLA's newer
# fusion emitters (the MLIR ones) cost more again to compile than the
# classic LLVM ones: without them the JAX run of
# tests/models/hierarchical_vae_test.py took 152 s instead of 224, and the
# heavy evaluations ran no slower (docs/testing.md). Each flag is added
# unless XLA_FLAGS already sets it.
_XLA_TEST_FLAGS = {
    "xla_backend_optimization_level": "0",
    "xla_cpu_use_fusion_emitters": "false",
}
for _flag, _value in _XLA_TEST_FLAGS.items():
    if _flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + f" --{_flag}={_value}"
        ).strip()

import keras  # noqa: E402
import pytest  # noqa: E402

# The runner (tests/run_backends.py) sets KERAS_BACKEND per process; a run
# whose backend differs from the one asked for must fail, not pass quietly.
REQUESTED = os.environ.get("KERAS_BACKEND")


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


def pytest_sessionstart(session):
    if REQUESTED and keras.backend.backend() != REQUESTED:
        raise pytest.UsageError(
            f"KERAS_BACKEND={REQUESTED} but keras runs {keras.backend.backend()}."
        )


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
