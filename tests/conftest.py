import os

import keras
import pytest

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
