"""Loads a model saved on another backend and checks it here.

Usage: KERAS_BACKEND=<b> python cross_backend_worker.py DIR METHOD ATOL STEPS
Prints one JSON line; exits non-zero on any mismatch.
"""

import json
import sys
from pathlib import Path

import keras
import numpy as np

import keras_vae  # noqa: F401  (registers the classes)


def first(outputs):
    return np.asarray(outputs[0] if isinstance(outputs, (tuple, list)) else outputs)


def main(folder, method, atol, steps):
    folder = Path(folder)
    x = np.load(folder / "x.npy")
    expected = np.load(folder / "expected.npy")
    report = {"backend": keras.backend.backend()}

    # Weights file into a fresh model built from the same config.
    model = keras.models.load_model(folder / "model.keras", safe_mode=True)
    fresh = type(model).from_config(model.get_config())
    fresh.load_weights(folder / "model.weights.h5")
    for name, candidate in (("weights", fresh), ("keras", model)):
        diff = float(np.max(np.abs(first(getattr(candidate, method)(x)) - expected)))
        report[f"{name}_max_diff"] = diff
        assert diff <= atol, f"{name}: {method} differs by {diff} > {atol}"

    # The .keras file keeps training here, optimizer state included.
    history = model.fit(x, epochs=1, batch_size=max(1, len(x) // steps), verbose=0)
    loss = history.history["loss"][-1]
    assert np.isfinite(loss), f"loss after reload is {loss}"
    report["loss"] = loss
    report["optimizer"] = type(model.optimizer).__module__
    report["jit_compile"] = bool(model.jit_compile)
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
