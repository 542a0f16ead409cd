"""Mutual Information Gap (Chen et al. 2018)."""

import numpy as np

from keras_vae.metrics import ground_truth


def _discretize(codes, num_bins):
    """Each code column into `num_bins` equal-width bins over its range."""
    columns = []
    for column in codes.T:
        edges = np.histogram(column, num_bins)[1]
        columns.append(np.digitize(column, edges[:-1]))
    return np.stack(columns, axis=-1)


def _mutual_information(a, b):
    """Discrete mutual information `I(a; b)` in nats of two int vectors."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.bincount(a * (b.max() + 1) + b, minlength=(a.max() + 1) * (b.max() + 1))
    joint = joint.reshape(a.max() + 1, b.max() + 1) / len(a)
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    nonzero = joint > 0
    return float(np.sum(joint[nonzero] * np.log(joint[nonzero] / outer[nonzero])))


def _entropy(a):
    p = np.bincount(np.unique(a, return_inverse=True)[1]) / len(a)
    return float(-np.sum(p * np.log(p)))


def mutual_information_gap(
    model,
    images_fn=None,
    num_values=None,
    num_samples=10_000,
    num_bins=20,
    batch_size=1024,
    seed=0,
    return_matrix=False,
):
    """Mutual Information Gap (MIG) of a representation, in `[0, 1]`.

    For each factor `k`, the gap between the two largest mutual
    informations `I(z_j; v_k)` over codes `j`, divided by the entropy
    `H(v_k)`, averaged over factors (Chen et al. 2018, "Isolating sources
    of disentanglement in VAEs"). 1: each factor is captured by exactly one
    code; 0: no code stands out. As in disentanglement_lib (Locatello et
    al. 2019), `num_samples` factor vectors are drawn uniformly, their
    inputs encoded to posterior means, and each code is discretized into
    `num_bins` equal-width bins to estimate the mutual information.

    Args:
        model: a model with `encode` (its posterior means are used) or a
            function `inputs -> (n, num_codes)`.
        images_fn: `"sprites"` (the default), `"dsprites"`, or a function
            mapping factor classes `(n, num_factors)` int to inputs.
        num_values: tuple of ints, values per factor (needed with a custom
            `images_fn`).
        num_samples: int. Inputs drawn. Defaults to `10_000`.
        num_bins: int. Histogram bins per code. Defaults to `20`.
        batch_size: int. Inputs rendered and encoded at once.
        seed: int. Seed of the factor draws. Defaults to `0`.
        return_matrix: bool. Also return the `(num_codes, num_factors)`
            mutual information matrix (nats) and the factor entropies.

    Returns:
        float MIG, or `(mig, mutual_information, entropies)`.

    Example:

    >>> import numpy as np
    >>> identity = lambda classes: classes.astype("float32")
    >>> mig = mutual_information_gap(identity, identity, num_values=(3, 4))
    >>> round(mig, 2)
    1.0
    """
    ground_truth.check_positive(num_samples=num_samples, num_bins=num_bins)
    images_fn, num_values = ground_truth.resolve_data(images_fn, num_values)
    representation_fn = ground_truth.representation_function(model)
    rng = np.random.default_rng(seed)
    classes = ground_truth.sample_classes(num_values, int(num_samples), rng)
    codes = ground_truth.represent(representation_fn, images_fn, classes, batch_size)
    binned = _discretize(codes, int(num_bins))
    mutual_information = np.array(
        [
            [_mutual_information(binned[:, j], classes[:, k]) for k in range(len(num_values))]
            for j in range(codes.shape[1])
        ]
    )
    entropies = np.array([_entropy(classes[:, k]) for k in range(len(num_values))])
    top = np.sort(mutual_information, axis=0)[::-1]
    second = top[1] if len(top) > 1 else np.zeros_like(top[0])
    mig = float(np.mean((top[0] - second) / entropies))
    if return_matrix:
        return mig, mutual_information, entropies
    return mig
