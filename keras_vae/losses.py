"""Log-likelihoods and KL divergences, written with `keras.ops` only.

Every function returns values in nats and computes in float32, whatever the
dtype policy of the model that calls it (mixed precision keeps the losses in
full precision). Functions that take images sum over every axis but the
first, so they return one value per example.
"""

import math

from keras import ops

LOG_2PI = math.log(2.0 * math.pi)


def _float32(*tensors):
    return [ops.cast(t, "float32") for t in tensors]


def _sum_over_example(values):
    """Sums all axes but the first: per-example totals."""
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


def bernoulli_log_likelihood(x, logits):
    """Log-likelihood of `x` under independent Bernoulli pixels.

    Args:
        x: Tensor of targets in `[0, 1]`, shape `(batch, ...)`.
        logits: Tensor of the same shape, the Bernoulli logits.

    Returns:
        Tensor of shape `(batch,)`: `sum x*log(p) + (1-x)*log(1-p)`, computed
        stably from the logits as `x*l - softplus(l)`.

    Example:

    >>> import numpy as np
    >>> ll = bernoulli_log_likelihood(np.ones((1, 2)), np.zeros((1, 2)))
    >>> round(float(ll[0]), 4)  # 2 * log(0.5)
    -1.3863
    """
    x, logits = _float32(x, logits)
    return _sum_over_example(x * logits - ops.softplus(logits))


def gaussian_log_likelihood(x, mean, log_var):
    """Log-likelihood of `x` under a diagonal Gaussian.

    Args:
        x: Tensor of targets, shape `(batch, ...)`.
        mean: Tensor broadcastable to `x`.
        log_var: Tensor broadcastable to `x`: the log-variance.

    Returns:
        Tensor of shape `(batch,)`.

    Example:

    >>> import numpy as np
    >>> ll = gaussian_log_likelihood(np.zeros((1, 1)), 0.0, 0.0)
    >>> round(float(ll[0]), 4)  # -0.5 * log(2 pi)
    -0.9189
    """
    x, mean, log_var = _float32(x, mean, log_var)
    values = -0.5 * (LOG_2PI + log_var + ops.square(x - mean) / ops.exp(log_var))
    return _sum_over_example(values + ops.zeros_like(x))


def diagonal_gaussian_log_prob(z, mean, log_var):
    """Log-density of `z` under `N(mean, exp(log_var))`, summed on the last axis.

    Works on any leading shape: `z` of shape `(..., latent_dim)` gives a
    result of shape `(...)`.
    """
    z, mean, log_var = _float32(z, mean, log_var)
    values = -0.5 * (LOG_2PI + log_var + ops.square(z - mean) * ops.exp(-log_var))
    return ops.sum(values, axis=-1)


def standard_normal_log_prob(z):
    """Log-density of `z` under `N(0, I)`, summed on the last axis."""
    (z,) = _float32(z)
    return ops.sum(-0.5 * (LOG_2PI + ops.square(z)), axis=-1)


def gaussian_kl(mean, log_var):
    """Closed-form `KL(N(mean, exp(log_var)) || N(0, I))` per latent dimension.

    Args:
        mean: Tensor of shape `(batch, latent_dim)`.
        log_var: Tensor of shape `(batch, latent_dim)`.

    Returns:
        Tensor of shape `(batch, latent_dim)`; sum the last axis for the KL
        of each example: `0.5 * (exp(log_var) + mean**2 - 1 - log_var)`.

    Example:

    >>> import numpy as np
    >>> float(gaussian_kl(np.zeros((1, 1)), np.zeros((1, 1)))[0, 0])
    0.0
    """
    mean, log_var = _float32(mean, log_var)
    return 0.5 * (ops.exp(log_var) + ops.square(mean) - 1.0 - log_var)


def negative_bound(log_px_z, z, mean, log_var):
    """Per-example negative ELBO (one sample) or negative IWAE bound.

    The `k` samples `z` of each example are drawn from its posterior
    `N(mean, exp(log_var))`. With `k = 1` this is the negative ELBO with the
    closed-form KL, `KL - log p(x|z)`; with `k > 1` the negative
    importance-weighted bound `-log mean_k p(x|z_k) p(z_k) / q(z_k|x)`
    (Burda et al. 2016), which tends to `-log p(x)` as `k` grows.

    Args:
        log_px_z: `log p(x|z_k)`, shape `(batch, k)`.
        z: the samples, shape `(batch, k, latent_dim)`.
        mean: posterior means, shape `(batch, latent_dim)`.
        log_var: posterior log-variances, shape `(batch, latent_dim)`.

    Returns:
        Tensor of shape `(batch,)`, in nats.

    Example:

    >>> import numpy as np
    >>> zeros = np.zeros((1, 2), "float32")
    >>> float(negative_bound(np.full((1, 1), -3.0), zeros[:, None], zeros, zeros)[0])
    3.0
    """
    log_px_z, z, mean, log_var = _float32(log_px_z, z, mean, log_var)
    num_samples = z.shape[1]
    if num_samples == 1:
        return ops.sum(gaussian_kl(mean, log_var), axis=-1) - log_px_z[:, 0]
    log_w = (
        log_px_z
        + standard_normal_log_prob(z)
        - diagonal_gaussian_log_prob(z, mean[:, None], log_var[:, None])
    )
    return math.log(num_samples) - ops.logsumexp(log_w, axis=1)
