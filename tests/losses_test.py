import keras
import numpy as np
import pytest
from keras import ops

from keras_vae import losses

RNG = np.random.default_rng(0)


def test_bernoulli_matches_numpy():
    x = (RNG.random((4, 5, 5, 1)) > 0.5).astype("float32")
    logits = RNG.normal(size=x.shape).astype("float32") * 3
    p = 1 / (1 + np.exp(-logits))
    expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    actual = ops.convert_to_numpy(losses.bernoulli_log_likelihood(x, logits))
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_bernoulli_is_stable_for_large_logits():
    x = np.array([[1.0, 0.0]], "float32")
    logits = np.array([[200.0, -200.0]], "float32")
    actual = ops.convert_to_numpy(losses.bernoulli_log_likelihood(x, logits))
    np.testing.assert_allclose(actual, [0.0], atol=1e-6)


def test_gaussian_matches_numpy():
    x = RNG.normal(size=(3, 4)).astype("float32")
    mean = RNG.normal(size=(3, 4)).astype("float32")
    log_var = RNG.normal(size=(4,)).astype("float32")
    var = np.exp(log_var)
    expected = np.sum(-0.5 * np.log(2 * np.pi * var) - (x - mean) ** 2 / (2 * var), axis=1)
    actual = ops.convert_to_numpy(losses.gaussian_log_likelihood(x, mean, log_var))
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_kl_matches_monte_carlo():
    mean = np.array([[0.5, -1.0]], "float32")
    log_var = np.array([[-0.5, 0.3]], "float32")
    kl = ops.convert_to_numpy(ops.sum(losses.gaussian_kl(mean, log_var)))
    z = mean + np.exp(0.5 * log_var) * RNG.normal(size=(200000, 2))
    log_q = ops.convert_to_numpy(losses.diagonal_gaussian_log_prob(z, mean, log_var))
    log_p = ops.convert_to_numpy(losses.standard_normal_log_prob(z))
    np.testing.assert_allclose(kl, np.mean(log_q - log_p), rtol=1e-2)


def test_losses_compute_in_float32():
    x = np.ones((2, 3), "float16")
    out = losses.bernoulli_log_likelihood(x, np.zeros((2, 3), "float16"))
    assert ops.convert_to_numpy(out).dtype == np.float32


def test_negative_bound_elbo_and_importance_weighted():
    mean = RNG.normal(size=(3, 2)).astype("float32")
    log_var = RNG.normal(size=(3, 2)).astype("float32") * 0.3
    z = (mean[:, None] + np.exp(0.5 * log_var)[:, None] * RNG.normal(size=(3, 4, 2))).astype(
        "float32"
    )
    log_px_z = RNG.normal(size=(3, 4)).astype("float32") - 5.0

    # k = 1: closed-form KL minus the reconstruction term.
    kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1 - log_var, axis=-1)
    one = ops.convert_to_numpy(losses.negative_bound(log_px_z[:, :1], z[:, :1], mean, log_var))
    np.testing.assert_allclose(one, kl - log_px_z[:, 0], rtol=1e-5)

    # k = 4: -log mean_k exp(log w_k), log w = log p(x|z) + log p(z) - log q(z|x).
    log_pz = -0.5 * np.sum(np.log(2 * np.pi) + z**2, axis=-1)
    log_qz = -0.5 * np.sum(
        np.log(2 * np.pi) + log_var[:, None] + (z - mean[:, None]) ** 2 / np.exp(log_var[:, None]),
        axis=-1,
    )
    log_w = log_px_z + log_pz - log_qz
    expected = -np.log(np.mean(np.exp(log_w), axis=1))
    actual = ops.convert_to_numpy(losses.negative_bound(log_px_z, z, mean, log_var))
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_log_mean_exp_matches_numpy_and_is_stable():
    values = RNG.normal(size=(3, 50)) * 5 - 400.0  # exp underflows in float32
    shift = values.max(axis=1, keepdims=True)
    expected = np.log(np.mean(np.exp(values - shift), axis=1)) + shift[:, 0]
    actual = ops.convert_to_numpy(losses.log_mean_exp(values, axis=1))
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(
        ops.convert_to_numpy(losses.log_mean_exp(values.T, axis=0)), expected, rtol=1e-6
    )


def test_reparameterize_applies_the_formula_to_given_noise():
    mean = RNG.normal(size=(4, 3)).astype("float32")
    log_var = RNG.normal(size=(4, 3)).astype("float32")
    noise = RNG.normal(size=(4, 2, 3)).astype("float32")
    z = losses.reparameterize(mean[:, None], log_var[:, None], noise=noise)
    expected = mean[:, None] + np.exp(log_var[:, None] / 2) * noise
    np.testing.assert_allclose(ops.convert_to_numpy(z), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        losses.reparameterize(mean, log_var, noise=noise, sample_shape=(2,))


def test_reparameterize_draws_from_the_gaussian():
    mean = np.array([1.0, -2.0], "float32")
    log_var = np.log(np.array([0.25, 4.0], "float32"))
    z = ops.convert_to_numpy(losses.reparameterize(mean, log_var, seed=0, sample_shape=(20000,)))
    assert z.shape == (20000, 2)
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), [0.5, 2.0], rtol=0.03)
    # The draw is the seeded standard normal, scaled and shifted.
    eps = ops.convert_to_numpy(keras.random.normal((20000, 2), seed=0))
    np.testing.assert_allclose(z, mean + np.exp(log_var / 2) * eps, rtol=1e-5, atol=1e-6)


def test_importance_sampled_log_likelihood_matches_numpy():
    log_px_z = RNG.normal(size=(6, 3)) - 90.0
    log_pz = RNG.normal(size=(6, 3)) - 5.0
    log_qz = RNG.normal(size=(6, 3)) - 4.0
    log_w = losses.importance_log_weights(log_px_z, log_pz, log_qz)
    np.testing.assert_allclose(ops.convert_to_numpy(log_w), log_px_z + log_pz - log_qz, rtol=1e-6)
    w = log_px_z + log_pz - log_qz
    expected = np.log(np.mean(np.exp(w + 91.0), axis=0)) - 91.0
    actual = ops.convert_to_numpy(losses.importance_sampled_log_likelihood(log_w, axis=0))
    np.testing.assert_allclose(actual, expected, rtol=1e-6)
    # Chunks of samples concatenated give the estimate over all of them.
    chunked = losses.importance_sampled_log_likelihood(
        ops.concatenate([log_w[:2], log_w[2:]], axis=0), axis=0
    )
    np.testing.assert_allclose(ops.convert_to_numpy(chunked), actual, rtol=1e-6)


def test_chunked_importance_sampled_log_likelihood_matches_numpy_with_padding():
    # 10 samples of 3 examples in 4 chunks of 3: the last 2 rows are padding
    # that must not count; weights near -1000 nats and spread over chunks
    # (the running maximum grows chunk to chunk) stay finite and exact.
    w = RNG.normal(size=(10, 3)) * 20.0 - 1000.0 + np.arange(10)[:, None] * 5.0
    padded = np.concatenate([w, np.full((2, 3), 7.0)]).reshape(4, 3, 3).astype("float32")
    mask = np.zeros((4, 3), "float32")
    mask[-1, 1:] = -np.inf
    top = w.max(axis=0)
    expected = np.log(np.mean(np.exp(w - top), axis=0)) + top
    actual = losses.chunked_importance_sampled_log_likelihood(
        lambda i: ops.take(padded, i, axis=0), 4, mask
    )
    np.testing.assert_allclose(ops.convert_to_numpy(actual), expected, rtol=1e-6)
    one_chunk = losses.chunked_importance_sampled_log_likelihood(
        lambda i: ops.take(padded[:, :1], i, axis=0), 1, mask[:1, :1]
    )
    np.testing.assert_allclose(ops.convert_to_numpy(one_chunk), w[0], rtol=1e-6)


def test_categorical_matches_numpy():
    logits = RNG.normal(size=(3, 5, 7)).astype("float32") * 4
    labels = RNG.integers(0, 7, size=(3, 5))
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    expected = np.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
    actual = ops.convert_to_numpy(losses.categorical_log_likelihood(labels, logits))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def test_importance_weighted_bound_matches_numpy_and_bounds_the_elbo():
    log_px_z = RNG.normal(size=(5, 3)) * 4 - 90.0
    log_pz = RNG.normal(size=(5, 3)) - 5.0
    log_qz = RNG.normal(size=(5, 3)) - 4.0
    iwae, elbo = losses.importance_weighted_bound(log_px_z, log_pz, log_qz, axis=0)
    log_w = log_px_z + log_pz - log_qz
    shift = log_w.max(axis=0)
    expected = np.log(np.mean(np.exp(log_w - shift), axis=0)) + shift
    np.testing.assert_allclose(ops.convert_to_numpy(iwae), expected, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(elbo), log_w.mean(axis=0), rtol=1e-6)
    assert np.all(ops.convert_to_numpy(iwae) >= ops.convert_to_numpy(elbo))
    # It is the evaluation estimator: the same value as the two building blocks.
    same = losses.importance_sampled_log_likelihood(
        losses.importance_log_weights(log_px_z, log_pz, log_qz), axis=0
    )
    np.testing.assert_allclose(ops.convert_to_numpy(iwae), ops.convert_to_numpy(same))
    # k = 1: the bound is the ELBO; kl_weight scales log p(z) - log q(z|x).
    one, elbo_one = losses.importance_weighted_bound(
        log_px_z[:1], log_pz[:1], log_qz[:1], axis=0, kl_weight=0.25
    )
    weighted = log_px_z[0] + 0.25 * (log_pz[0] - log_qz[0])
    np.testing.assert_allclose(ops.convert_to_numpy(one), weighted, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(elbo_one), weighted, rtol=1e-6)


def test_flow_log_prob_and_monte_carlo_kl_match_the_gaussian():
    mean = RNG.normal(size=(3, 2)).astype("float32")
    log_var = (RNG.normal(size=(3, 2)) * 0.3).astype("float32")
    z0 = (mean + np.exp(0.5 * log_var) * RNG.normal(size=(3, 2))).astype("float32")
    log_det = RNG.normal(size=(3, 2)).astype("float32")
    per_dim = ops.convert_to_numpy(losses.flow_log_prob(z0, mean, log_var, log_det))
    gaussian = ops.convert_to_numpy(losses.diagonal_gaussian_log_prob(z0, mean, log_var))
    np.testing.assert_allclose(per_dim.sum(-1), gaussian - log_det.sum(-1), rtol=1e-5)
    # Without a flow, the Monte Carlo KL averages to the closed form.
    z = mean[0] + np.exp(0.5 * log_var[0]) * RNG.normal(size=(200000, 2))
    log_q = losses.flow_log_prob(z, mean[0], log_var[0])
    kl = ops.convert_to_numpy(losses.monte_carlo_kl(z, log_q)).mean(axis=0)
    np.testing.assert_allclose(
        kl, ops.convert_to_numpy(losses.gaussian_kl(mean[:1], log_var[:1]))[0], atol=2e-2
    )
