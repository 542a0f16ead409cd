"""Anomaly detection on real MNIST: corrupted digits score higher."""

import numpy as np
import pytest

import keras_vae as kv
from keras_vae.metrics import anomaly_threshold, roc_auc


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    normal = rng.normal(size=40).round(1)  # rounding creates ties
    anomalous = rng.normal(0.8, size=30).round(1)
    pairs = (anomalous[None] > normal[:, None]) + 0.5 * (
        anomalous[None] == normal[:, None]
    )
    assert roc_auc(normal, anomalous) == pytest.approx(pairs.mean())
    assert roc_auc([0, 1], [2, 3]) == 1.0
    assert roc_auc([2, 3], [0, 1]) == 0.0


def test_threshold_and_errors():
    scores = np.arange(1000.0)
    threshold = anomaly_threshold(scores, false_positive_rate=0.05)
    assert np.mean(scores > threshold) == pytest.approx(0.05, abs=0.002)
    with pytest.raises(ValueError, match="false_positive_rate"):
        anomaly_threshold(scores, false_positive_rate=1.0)
    with pytest.raises(ValueError, match="empty"):
        anomaly_threshold([])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([np.nan], [1.0])


def test_infinite_scores_rank_highest_and_nan_is_refused():
    # +inf is the exported `score` signature's answer to an invalid input.
    assert roc_auc([1.0, 2.0], [np.inf, 3.0]) == 1.0
    assert roc_auc([1.0, np.inf], [np.inf, 0.0]) == pytest.approx(0.375)
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([1.0], [np.nan])
    with pytest.raises(ValueError, match="-inf"):
        roc_auc([-np.inf], [1.0])
    with pytest.raises(ValueError, match=r"1 \+inf scores.*drop them"):
        anomaly_threshold([1.0, 2.0, np.inf])


def test_anomaly_score_is_deterministic_and_refuses_invalid_pixels():
    model = kv.VAE(input_shape=(8, 8, 1), latent_dim=2, architecture="mlp", hidden_dims=(16,))
    x = np.random.default_rng(0).random((3, 8, 8, 1)).astype("float32")
    first = model.anomaly_score(x)
    # The same input gets the same score on every call (one posterior
    # sample, drawn from the default seed 0), one at a time or batched.
    np.testing.assert_array_equal(first, model.anomaly_score(x))
    np.testing.assert_allclose(model.anomaly_score(x[:1]), first[:1], rtol=1e-5)
    np.testing.assert_array_equal(
        model.anomaly_score(x, num_samples=3), model.anomaly_score(x, num_samples=3)
    )
    assert not np.array_equal(model.anomaly_score(x, seed=1), first)
    # Invalid pixels are refused, never scored as normal.
    for value, message in ((255.0, r"\[0, 1\]"), (-0.5, r"\[0, 1\]"), (np.nan, "NaN")):
        bad = x.copy()
        bad[1, 2, 3, 0] = value
        for num_samples in (1, 4):
            with pytest.raises(ValueError, match=message):
                model.anomaly_score(bad, num_samples=num_samples)


def corrupt(images, rng, fraction=0.1):
    """Replaces `fraction` of the pixels with uniform noise."""
    images = images.copy()
    mask = rng.random(images.shape) < fraction
    images[mask] = rng.random(int(mask.sum()))
    return images


@pytest.mark.slow
def test_corrupted_mnist_scores_higher():
    (x_train, _), (x_test, _) = kv.datasets.load("mnist")
    rng = np.random.default_rng(0)
    x_train = x_train[rng.permutation(len(x_train))[:4000]]
    x_valid, x_clean, x_other = x_test[:300], x_test[300:600], x_test[600:900]
    model = kv.VAE(
        input_shape=(28, 28, 1),
        latent_dim=8,
        architecture="mlp",
        hidden_dims=(128,),
        seed=0,
    )
    model.compile(optimizer="adam")
    model.fit(x_train, epochs=3, batch_size=100, verbose=0)

    clean = model.anomaly_score(x_clean, seed=0)
    corrupted = model.anomaly_score(corrupt(x_other, rng), seed=0)
    auc = roc_auc(clean, corrupted)
    print(f"ROC AUC clean vs corrupted MNIST: {auc:.4f}")
    assert auc > 0.9

    threshold = anomaly_threshold(model.anomaly_score(x_valid, seed=0), 0.05)
    assert np.mean(clean > threshold) < 0.15
    assert np.mean(corrupted > threshold) > 0.7

    # The one-sample score is the negative ELBO; more samples estimate
    # -log p(x), which the ELBO bounds from above (on average).
    assert np.mean(clean) == pytest.approx(
        -np.mean(model.elbo(x_clean, seed=1)), rel=0.05
    )
    iwae = model.anomaly_score(x_clean[:50], num_samples=20, seed=0)
    assert np.mean(iwae) < np.mean(clean[:50])
