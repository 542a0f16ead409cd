import numpy as np
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
    expected = np.sum(
        -0.5 * np.log(2 * np.pi * var) - (x - mean) ** 2 / (2 * var), axis=1
    )
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
