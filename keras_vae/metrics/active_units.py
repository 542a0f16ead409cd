"""Active latent units (Burda et al. 2016)."""

import numpy as np

DEFAULT_THRESHOLD = 0.01


def active_units(model, x, threshold=DEFAULT_THRESHOLD, batch_size=256):
    """Number of latent dimensions the model actually uses.

    A unit `u` is active when `Cov_x(E_{q(z|x)}[z_u]) > threshold`: the
    posterior mean of that dimension varies across the data (Burda et al.
    2016, section 5.2). Collapsed units have posteriors equal to the prior
    for every input, so their mean does not vary.

    Args:
        model: a model with `encode(x) -> (z_mean, z_log_var)`, e.g. `VAE`.
        x: array of inputs, e.g. the test set.
        threshold: float. Variance above which a unit counts as active.
            Defaults to `0.01`.
        batch_size: int. Inputs encoded at once. Defaults to `256`.

    Returns:
        int, the number of active units.

    Example:

    >>> import numpy as np
    >>> import keras_vae as kv
    >>> model = kv.VAE(input_shape=(28, 28, 1), latent_dim=4, seed=0)
    >>> x = np.random.default_rng(0).random((32, 28, 28, 1), "float32")
    >>> 0 <= active_units(model, x) <= 4
    True
    """
    threshold = float(threshold)
    if not threshold >= 0:
        raise ValueError(f"`threshold` must be >= 0, got {threshold}.")
    if len(x) < 2:
        raise ValueError(
            f"Active units need at least 2 inputs to estimate a variance, got {len(x)}."
        )
    z_mean = model.encode(x, batch_size=batch_size)[0]
    z_mean = np.asarray(z_mean, dtype="float64").reshape(len(x), -1)
    return int(np.sum(np.var(z_mean, axis=0) > threshold))
