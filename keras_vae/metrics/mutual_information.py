"""Mutual information between data and latent under the encoder."""

import numpy as np
from keras import ops

from keras_vae import losses


def mutual_information_from_posteriors(z_mean, z_log_var, seed=0, chunk=512):
    """`I(x; z)` under `q(x, z) = p_data(x) q(z|x)` from posterior parameters.

    The estimator of Hoffman & Johnson (2016) as computed by He et al.
    (2019): `I = E_x E_q(z|x)[log q(z|x)] - E_q(z)[log q(z)]`, where the
    first term is the negative entropy of each Gaussian posterior (closed
    form) and the aggregate posterior `q(z) = mean_j q(z|x_j)` is evaluated
    at one draw `z_i ~ q(z|x_i)` per example. The second term is biased for
    small data sets; use a few thousand examples. The value is at most
    `log(n)` nats.

    Args:
        z_mean: array `(n, latent_dim)`.
        z_log_var: array `(n, latent_dim)`.
        seed: int. Seed of the draws. Defaults to `0`.
        chunk: int. Rows of the `(n, n)` density matrix computed at once.

    Returns:
        float, nats.

    Example:

    >>> import numpy as np
    >>> prior = np.zeros((1000, 4))  # q(z|x) = N(0, I) for every x
    >>> abs(mutual_information_from_posteriors(prior, prior)) < 0.2
    True
    """
    z_mean = np.asarray(z_mean, dtype="float64")
    z_log_var = np.asarray(z_log_var, dtype="float64")
    if z_mean.ndim != 2 or z_mean.shape != z_log_var.shape:
        raise ValueError(
            "Expected z_mean and z_log_var of the same shape (n, latent_dim); "
            f"got {z_mean.shape} and {z_log_var.shape}."
        )
    num, dim = z_mean.shape
    if num < 2:
        raise ValueError(f"Mutual information needs >= 2 examples, got {num}.")
    log_2pi = np.log(2.0 * np.pi)
    neg_entropy = np.mean(
        -0.5 * dim * log_2pi - 0.5 * np.sum(1.0 + z_log_var, -1)
    )
    rng = np.random.default_rng(seed)
    z = losses.reparameterize(z_mean, z_log_var, noise=rng.standard_normal(z_mean.shape))
    log_qz = []
    for start in range(0, num, int(chunk)):
        zc = z[start : start + int(chunk), None, :]  # (c, 1, d)
        log_density = losses.diagonal_gaussian_log_prob(zc, z_mean[None], z_log_var[None])
        # (c, n): log q(z_i | x_j); q(z_i) is its mean over j.
        log_qz.append(ops.convert_to_numpy(losses.log_mean_exp(log_density, axis=1)))
    return float(neg_entropy - np.mean(np.concatenate(log_qz), dtype="float64"))


def mutual_information(model, x, seed=0, batch_size=256):
    """`I(x; z)` of a model's encoder on inputs `x` (nats).

    Encodes `x` with `model.encode(x) -> (z_mean, z_log_var)` (a `VAE`, a
    `TextVAE` on sentences ...) and applies
    `mutual_information_from_posteriors`.

    Example:

    >>> import numpy as np
    >>> import keras_vae as kv
    >>> model = kv.VAE(input_shape=(28, 28, 1), latent_dim=4, seed=0)
    >>> x = np.random.default_rng(0).random((32, 28, 28, 1), "float32")
    >>> mutual_information(model, x) >= -1.0
    True
    """
    z_mean, z_log_var = model.encode(x, batch_size=batch_size)
    return mutual_information_from_posteriors(z_mean, z_log_var, seed=seed)
