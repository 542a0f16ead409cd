"""Representations with known disentanglement, for the metrics' tests.

Four factors of four values each, observed directly (`images_fn` returns
the factor classes as floats), so no rendering or model is involved:

- `perfect`: each code is one standardized factor (in a shuffled order,
  with two extra constant codes): every metric is ~1;
- `entangled`: every code is the same-magnitude mix of all four factors
  (an orthogonal Hadamard mix): every metric is ~0 (FactorVAE: chance);
- `rotated`: a random rotation: in between.
"""

import numpy as np

NUM_VALUES = (4, 4, 4, 4)
HADAMARD = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
ROTATION = np.linalg.qr(np.random.default_rng(1).normal(size=(4, 4)))[0]


def observe(classes):
    return np.asarray(classes, dtype="float32")


def _standardized(x):
    sizes = np.array(NUM_VALUES)
    return (x - (sizes - 1) / 2) / np.sqrt((sizes**2 - 1) / 12)


def perfect(x):
    codes = _standardized(x)[:, [2, 0, 3, 1]]
    return np.concatenate([codes, np.zeros((len(x), 2))], axis=1)


def entangled(x):
    return _standardized(x) @ HADAMARD


def rotated(x):
    return _standardized(x) @ ROTATION
