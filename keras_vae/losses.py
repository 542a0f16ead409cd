"""Log-likelihoods, KL divergences and the shared sampling math, in `keras.ops`.

Every function returns values in nats and computes in float32, whatever the
dtype policy of the model that calls it (mixed precision keeps the losses in
full precision); `reparameterize` alone keeps its inputs' dtype, since it
runs inside the network. Functions that take images sum over every axis but
the first, so they return one value per example.

The log-sum-exp (`log_mean_exp`), the reparameterised draw
(`reparameterize`) and the importance-sampled estimator
(`importance_log_weights`, `importance_sampled_log_likelihood`, and
`importance_weighted_bound`, the IWAE training objective built on them)
live here once; every model calls them. `flow_log_prob` and
`monte_carlo_kl` give the density and KL of a flow posterior.
"""

import math

import keras
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


def categorical_log_likelihood(labels, logits):
    """Log-probability of integer `labels` under softmax `logits`, per position.

    `log softmax(logits)[label]`, computed stably (a log-sum-exp over the
    last axis); no sum over positions, so a sequence model sums or masks
    the result itself.

    Args:
        labels: int tensor of shape `(...)`, values in `[0, num_classes)`.
        logits: Tensor of shape `(..., num_classes)`.

    Returns:
        Float32 tensor of shape `(...)`, in nats.

    Example:

    >>> import numpy as np
    >>> ll = categorical_log_likelihood(np.array([[1]]), np.zeros((1, 1, 4)))
    >>> round(float(ll[0, 0]), 4)  # log(1 / 4)
    -1.3863
    """
    (logits,) = _float32(logits)
    log_probs = ops.log_softmax(logits, axis=-1)
    labels = ops.cast(labels, "int32")[..., None]
    return ops.take_along_axis(log_probs, labels, axis=-1)[..., 0]


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


def diagonal_gaussian_kl(mean, log_var, prior_mean, prior_log_var):
    """Closed-form `KL(N(mean, exp(log_var)) || N(prior_mean, exp(prior_log_var)))`.

    Elementwise (no sum): the KL of each latent coordinate between two
    diagonal Gaussians, e.g. a hierarchical VAE's posterior and its learned
    prior. With `prior_mean = 0` and `prior_log_var = 0` it is `gaussian_kl`.

    Args:
        mean, log_var: Tensors of the posterior's means and log-variances.
        prior_mean, prior_log_var: Tensors broadcastable to `mean`.

    Returns:
        Float32 tensor of the broadcast shape:
        `0.5 * (exp(log_var - prior_log_var) + (mean - prior_mean)**2 /
        exp(prior_log_var) - 1 - log_var + prior_log_var)`.

    Example:

    >>> import numpy as np
    >>> kl = diagonal_gaussian_kl(np.ones((1, 1)), np.zeros((1, 1)), 0.0, np.log(4.0))
    >>> round(float(kl[0, 0]), 4)  # 0.5 * (1/4 + 1/4 - 1 + log 4)
    0.4431
    """
    mean, log_var, prior_mean, prior_log_var = _float32(mean, log_var, prior_mean, prior_log_var)
    return 0.5 * (
        ops.exp(log_var - prior_log_var)
        + ops.square(mean - prior_mean) * ops.exp(-prior_log_var)
        - 1.0
        - log_var
        + prior_log_var
    )


def log_mean_exp(values, axis):
    """Stable `log(mean(exp(values), axis))`.

    Computed as `logsumexp(values, axis) - log(n)` with `n` the size of
    `axis`, so large negative values (log-likelihoods of hundreds of nats)
    neither underflow nor overflow.

    Args:
        values: Tensor of log-values.
        axis: int. The axis averaged over.

    Returns:
        Float32 tensor: `values`' shape without `axis`.

    Example:

    >>> import numpy as np
    >>> out = log_mean_exp(np.array([[-1000.0, -1000.0 + np.log(3.0)]]), axis=1)
    >>> round(float(out[0]), 4)  # -1000 + log((1 + 3) / 2)
    -999.3069
    """
    (values,) = _float32(values)
    return ops.logsumexp(values, axis=axis) - math.log(values.shape[axis])


def reparameterize(mean, log_var, seed=None, sample_shape=(), noise=None):
    """The reparameterised draw `z = mean + exp(log_var / 2) * eps`.

    `eps ~ N(0, I)` is drawn with `keras.random.normal` from `seed`, in the
    dtype of `mean`, so that gradients flow to `mean` and `log_var`
    (Kingma & Welling 2014). The `Sampling` layer and every model draw their
    latents through this function.

    Args:
        mean: Tensor of shape `(..., latent_dim)`.
        log_var: Tensor broadcastable to `mean`: the log-variance.
        seed: int, `keras.random.SeedGenerator` or `None`. Seed of `eps`.
            Defaults to `None`.
        sample_shape: tuple of ints. Leading axes of independent draws:
            `eps` has shape `sample_shape + mean.shape`, e.g. `(k,)` for `k`
            importance samples of each example. Defaults to `()`.
        noise: optional tensor of standard-normal draws, broadcastable
            against `mean`, used as `eps` instead of a draw (a serving
            signature's input, NumPy noise shared by every backend).
            Defaults to `None`.

    Returns:
        Tensor of shape `sample_shape + mean.shape` (or the broadcast shape
        of `mean` and `noise`).

    Example:

    >>> import numpy as np
    >>> z = reparameterize(np.zeros((2, 3)), np.zeros((2, 3)), seed=0, sample_shape=(5,))
    >>> tuple(z.shape)
    (5, 2, 3)
    >>> float(reparameterize(1.0, np.log(4.0), noise=0.5))  # 1 + 2 * 0.5
    2.0
    """
    mean = ops.convert_to_tensor(mean)
    log_var = ops.convert_to_tensor(log_var, dtype=mean.dtype)
    if noise is None:
        shape = tuple(sample_shape) + tuple(ops.shape(mean))
        noise = keras.random.normal(shape, dtype=mean.dtype, seed=seed)
    elif sample_shape:
        raise ValueError("Pass either `noise` or `sample_shape` to `reparameterize`, not both.")
    else:  # NumPy noise times a torch tensor that requires grad fails.
        noise = ops.convert_to_tensor(noise, dtype=mean.dtype)
    return mean + ops.exp(0.5 * log_var) * noise


def importance_log_weights(log_px_z, log_pz, log_qz):
    """Log importance weights `log p(x|z) + log p(z) - log q(z|x)`.

    The weights of samples `z ~ q(z|x)` for estimating `p(x)`; feed them to
    `importance_sampled_log_likelihood`. Any posterior or prior works: pass
    their log-densities at the samples.

    Args:
        log_px_z: Tensor of `log p(x|z)`, e.g. shape `(k, batch)`.
        log_pz: Tensor of `log p(z)`, broadcastable to `log_px_z`.
        log_qz: Tensor of `log q(z|x)`, broadcastable to `log_px_z`.

    Returns:
        Float32 tensor of the broadcast shape.

    Example:

    >>> float(importance_log_weights(-3.0, -1.0, -2.0))
    -2.0
    """
    log_px_z, log_pz, log_qz = _float32(log_px_z, log_pz, log_qz)
    return log_px_z + log_pz - log_qz


def importance_sampled_log_likelihood(log_weights, axis):
    """The importance-sampled estimate `log mean_k w_k` of `log p(x)`.

    With `k` samples of `q(z|x)` this is the importance-weighted bound of
    Burda et al. (2016): a lower bound on `log p(x)` in expectation, equal
    to the ELBO's Monte Carlo estimate for `k = 1` and tending to `log p(x)`
    as `k` grows. Weights computed in chunks of samples are concatenated on
    `axis` first; the mean is over all of them.

    Args:
        log_weights: Tensor of log importance weights
            (`importance_log_weights`).
        axis: int. The axis of the `k` samples.

    Returns:
        Float32 tensor: `log_weights`' shape without `axis`, in nats.

    Example:

    >>> import numpy as np
    >>> log_w = np.log(np.array([[1.0, 3.0]]))  # weights 1 and 3
    >>> round(float(importance_sampled_log_likelihood(log_w, axis=1)[0]), 4)  # log 2
    0.6931
    """
    return log_mean_exp(log_weights, axis=axis)


def chunked_importance_sampled_log_likelihood(chunk_log_weights, num_chunks, mask):
    """`importance_sampled_log_likelihood` over weights computed in chunks.

    One `keras.ops.fori_loop` asks `chunk_log_weights(i)` for the log-weights
    of chunk `i`, shape `(chunk_size, batch)`, and folds them into a running
    float32 log-sum-exp (`m = max`, `s = sum exp(log_w - m)`, rescaled as `m`
    grows), so memory holds one chunk, and the whole loop compiles into one
    function (jit on JAX, `tf.while_loop` on TensorFlow). The value is
    `log mean_k w_k` over the unmasked samples, equal to
    `importance_sampled_log_likelihood` of the concatenated weights up to
    float round-off.

    Args:
        chunk_log_weights: callable `i -> (chunk_size, batch)` tensor of log
            importance weights (`importance_log_weights`); `i` may be a
            tensor (traced once, inside the loop).
        num_chunks: int `>= 1` (or a scalar tensor: TensorFlow traces
            with unknown shapes).
        mask: tensor of shape `(num_chunks, chunk_size)`: `0` for a sample,
            `-inf` for padding (`num_samples` that `chunk_size` does not
            divide); chunk 0 must hold at least one sample.

    Returns:
        Float32 tensor of shape `(batch,)`, in nats.

    Example:

    >>> import numpy as np
    >>> log_w = np.log(np.array([[[1.0], [3.0]], [[2.0], [9.0]]]))  # 2 chunks of 2
    >>> mask = np.array([[0.0, 0.0], [0.0, -np.inf]])  # the last weight is padding
    >>> weights = lambda i: ops.take(log_w, i, axis=0)
    >>> out = chunked_importance_sampled_log_likelihood(weights, 2, mask)
    >>> round(float(out[0]), 4)  # log((1 + 3 + 2) / 3) = log 2
    0.6931
    """
    (mask,) = _float32(mask)

    def masked(i):
        (log_w,) = _float32(chunk_log_weights(i))
        return log_w + ops.expand_dims(ops.take(mask, i, axis=0), -1)

    first = masked(0)
    top = ops.max(first, axis=0)
    state = (top, ops.sum(ops.exp(first - top), axis=0))

    def fold(i, state):
        top, total = state
        log_w = masked(i)
        new_top = ops.maximum(top, ops.max(log_w, axis=0))
        total = total * ops.exp(top - new_top) + ops.sum(ops.exp(log_w - new_top), axis=0)
        return new_top, total

    top, total = ops.fori_loop(1, num_chunks, fold, state)
    count = ops.sum(ops.cast(ops.isfinite(mask), "float32"))
    return top + ops.log(total) - ops.log(count)


def importance_weighted_bound(log_px_z, log_pz, log_qz, axis=0, kl_weight=1.0):
    """The IWAE bound and the ELBO of the same `k` posterior samples.

    The estimator of the importance-weighted objective (Burda et al. 2016)
    that training and evaluation share: with `log w_k = log p(x|z_k) +
    log p(z_k) - log q(z_k|x)` for `k` draws `z_k ~ q(z|x)`,

    - `iwae = log mean_k w_k` (`importance_sampled_log_likelihood`), a lower
      bound on `log p(x)` in expectation that tightens as `k` grows; the
      training loss of `objective="iwae"` is `-mean_batch(iwae)`;
    - `elbo = mean_k log w_k`, the Monte Carlo ELBO of the same samples
      (`elbo <= iwae` always, by Jensen's inequality; equal for `k = 1`).

    Any posterior (diagonal Gaussian, normalizing flow, several latent
    groups) and prior fit: pass their total log-densities at the samples.

    Args:
        log_px_z: Tensor of `log p(x|z_k)`, e.g. shape `(k, batch)`.
        log_pz: Tensor of `log p(z_k)` (summed over latent dimensions and
            groups), broadcastable to `log_px_z`.
        log_qz: Tensor of `log q(z_k|x)`, broadcastable to `log_px_z`.
        axis: int. The axis of the `k` samples. Defaults to `0`.
        kl_weight: float or scalar tensor. Multiplies `log p(z) - log q(z|x)`
            in the weights (KL warm-up: `1` is the true bound). Defaults to
            `1.0`.

    Returns:
        Tuple `(iwae, elbo)` of float32 tensors: `log_px_z`'s broadcast
        shape without `axis`, in nats.

    Example:

    >>> import numpy as np
    >>> log_px_z = np.log(np.array([[1.0], [3.0]]))  # k = 2 samples, batch 1
    >>> iwae, elbo = importance_weighted_bound(log_px_z, 0.0, 0.0, axis=0)
    >>> round(float(iwae[0]), 4), round(float(elbo[0]), 4)  # log 2, log(3) / 2
    (0.6931, 0.5493)
    """
    log_pz, log_qz = _float32(log_pz, log_qz)
    log_w = importance_log_weights(log_px_z, kl_weight * log_pz, kl_weight * log_qz)
    return importance_sampled_log_likelihood(log_w, axis=axis), ops.mean(log_w, axis=axis)


def flow_log_prob(z0, mean, log_var, log_det=0.0):
    """Per-dimension log-density of a Gaussian posterior pushed through a flow.

    For `z0 ~ N(mean, exp(log_var))` and `z = f(z0)` with `f` invertible and
    its Jacobian triangular (an inverse autoregressive flow, Kingma et al.
    2016), the change of variables gives
    `log q(z) = log N(z0; mean, exp(log_var)) - log|det df/dz0|`, and the
    log-determinant is a sum of one term per dimension (the log-diagonal of
    the Jacobian). This returns the terms one dimension at a time; sum the
    last axis for `log q(z|x)`. With `log_det = 0` (no flow) it is the
    diagonal Gaussian's log-density per dimension.

    Args:
        z0: Tensor of shape `(..., latent_dim)`: the base Gaussian draw.
        mean: Tensor broadcastable to `z0`.
        log_var: Tensor broadcastable to `z0`.
        log_det: Tensor broadcastable to `z0`: `log|d z_i / d z0_i|` summed
            over the flow's steps, per dimension. Defaults to `0.0`.

    Returns:
        Float32 tensor of `z0`'s shape.

    Example:

    >>> import numpy as np
    >>> out = flow_log_prob(np.zeros((1, 2)), 0.0, 0.0, log_det=np.log([[0.5, 1.0]]))
    >>> [round(float(v), 4) for v in out[0]]  # -0.5 log(2 pi) - log(0.5), -0.5 log(2 pi)
    [-0.2258, -0.9189]
    """
    z0, mean, log_var, log_det = _float32(z0, mean, log_var, log_det)
    return -0.5 * (LOG_2PI + log_var + ops.square(z0 - mean) * ops.exp(-log_var)) - log_det


def monte_carlo_kl(z, log_qz):
    """Per-dimension single-sample KL estimate `log q(z|x) - log N(z; 0, I)`.

    The KL of a posterior without a closed form (a flow): the mean over
    samples `z ~ q(z|x)` of the returned values, summed over the last axis,
    is `KL(q(z|x) || N(0, I))`. Per-dimension terms let free bits act on
    each dimension as with the closed-form `gaussian_kl`.

    Args:
        z: Tensor of samples, shape `(..., latent_dim)`.
        log_qz: Tensor of the same shape: per-dimension `log q(z|x)`
            (`flow_log_prob`).

    Returns:
        Float32 tensor of `z`'s shape.

    Example:

    >>> import numpy as np
    >>> float(monte_carlo_kl(np.zeros((1, 1)), np.full((1, 1), -0.5))[0, 0])  # -0.5 + 0.9189
    0.4189385175704956
    """
    z, log_qz = _float32(z, log_qz)
    return log_qz + 0.5 * (LOG_2PI + ops.square(z))


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
    if z.shape[1] == 1:
        return ops.sum(gaussian_kl(mean, log_var), axis=-1) - log_px_z[:, 0]
    log_w = importance_log_weights(
        log_px_z,
        standard_normal_log_prob(z),
        diagonal_gaussian_log_prob(z, mean[:, None], log_var[:, None]),
    )
    return -importance_sampled_log_likelihood(log_w, axis=1)
