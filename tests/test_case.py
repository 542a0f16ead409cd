"""Small shared helpers for the test suite (kept deliberately short)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np

BACKENDS = ("tensorflow", "jax", "torch")
WORKER = Path(__file__).with_name("cross_backend_worker.py")


def assert_config_round_trip(obj):
    """get_config -> from_config -> get_config gives the same config."""
    config = obj.get_config()
    clone = type(obj).from_config(config)
    assert clone.get_config() == config
    return clone


def assert_saved_model_round_trip(model, x, method, tmp_path, atol=1e-6):
    """A `.keras` file reloads with `safe_mode=True` and gives the same outputs."""
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    expected = _first(getattr(model, method)(x))
    actual = _first(getattr(loaded, method)(x))
    np.testing.assert_allclose(actual, expected, atol=atol)
    return loaded


# Each backend's run checks a saved model on ONE other backend, around a
# ring, so that a CI run (one pytest per backend) pays one worker per test
# instead of two. `step=1` goes tensorflow -> jax -> torch -> tensorflow,
# `step=-1` the other way round: tests of the same files in both directions
# cover all six (saver, loader) pairs in one CI run. KERAS_VAE_ALL_PAIRS=1
# checks every other backend, as before.
ALL_PAIRS = os.environ.get("KERAS_VAE_ALL_PAIRS") == "1"


# Checks whose subject is the same on every backend run on TensorFlow's run
# only: a request to a SavedModel and TensorFlow's `saved_model_cli` (the
# SavedModel is always traced on TensorFlow: on JAX and torch
# `keras_vae.export` loads the `.keras` file in a TensorFlow subprocess), and
# the wheel's files. Each backend's own route to a SavedModel and to a
# preset keeps its tests. KERAS_VAE_ALL_PAIRS=1 runs them on every backend.
BACKEND_INDEPENDENT_CHECKS = "tensorflow"


def makes_backend_independent_checks():
    """Whether this run makes the checks that do not depend on the backend."""
    return keras.backend.backend() == BACKEND_INDEPENDENT_CHECKS or ALL_PAIRS


def ring_backends(step=1):
    """The other backends a cross-backend test checks from this backend."""
    here = keras.backend.backend()
    if ALL_PAIRS:
        return tuple(b for b in BACKENDS if b != here)
    return (BACKENDS[(BACKENDS.index(here) + step) % len(BACKENDS)],)


def run_on_other_backends(
    model, x, method, tmp_path, atol=1e-5, train_steps=2, backends=None, step=1
):
    """Saves `model` here, then in one subprocess per other backend loads it,
    checks `method(x)` matches (within `atol`) and trains `train_steps` more
    steps. `backends` names the other backends tried (default: the next one
    around the ring in direction `step`, see `ring_backends`).
    Returns the workers' reports."""
    tmp_path = Path(tmp_path)
    model.save(tmp_path / "model.keras")
    model.save_weights(tmp_path / "model.weights.h5")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "expected.npy", _first(getattr(model, method)(x)))
    if backends is None:
        backends = ring_backends(step)
    reports = {}
    for backend in BACKENDS:
        if backend == keras.backend.backend() or backend not in backends:
            continue
        env = {**os.environ, "KERAS_BACKEND": backend}
        result = subprocess.run(
            [sys.executable, str(WORKER), str(tmp_path), method, str(atol), str(train_steps)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"{backend} worker failed:\n{result.stderr[-4000:]}"
        reports[backend] = json.loads(result.stdout.strip().splitlines()[-1])
        assert reports[backend]["backend"] == backend
    assert reports, f"no other backend among {backends}"
    return reports


def _first(outputs):
    if isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    return np.asarray(outputs)
