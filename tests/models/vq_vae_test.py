import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae.models import VQVAE, TransformerPrior
from tests.test_case import (
    assert_config_round_trip,
    assert_saved_model_round_trip,
    ring_backends,
    run_on_other_backends,
)

RNG = np.random.default_rng(0)
X = RNG.random((64, 8, 8, 1)).astype("float32")
NAMES = [
    "codebook_usage",
    "loss",
    "perplexity",
    "reconstruction_loss",
    "vq_loss",
]


def small_vq_vae(**kwargs):
    args = dict(
        input_shape=(8, 8, 1),
        num_embeddings=8,
        embedding_dim=4,
        hidden_dims=(4, 8),
        num_residual_blocks=1,
        residual_hidden_dim=4,
        seed=0,
    )
    return VQVAE(**{**args, **kwargs})


def small_prior():
    return TransformerPrior(
        (2, 2), num_embeddings=8, embed_dim=8, num_layers=1, num_heads=2, seed=0
    )


def trained(model, epochs=1):
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(X, epochs=epochs, batch_size=16, verbose=0)
    return model, history


def numpy(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


@pytest.mark.parametrize("use_ema", [True, False])
def test_fit_logs_and_verbs(use_ema):
    model, history = trained(small_vq_vae(use_ema=use_ema))
    assert sorted(history.history) == NAMES
    logs = history.history
    assert 0.0 < logs["codebook_usage"][0] <= 1.0
    assert 1.0 <= logs["perplexity"][0] <= 8.0
    if not use_ema:
        return
    codes = model.encode(X[:5])
    assert codes.shape == (5, 2, 2) and codes.dtype == np.int32
    assert codes.min() >= 0 and codes.max() < 8
    images = model.decode_indices(codes)
    assert images.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(model.reconstruct(X[:5]), images, atol=1e-5)
    outputs = model(X[:2])
    assert set(outputs) == {"reconstruction", "encoding_indices", "perplexity"}
    with pytest.raises(ValueError, match="fit_prior"):
        model.sample(2, seed=0)


@pytest.fixture(scope="module")
def with_prior():
    keras.utils.set_random_seed(0)
    model, _ = trained(small_vq_vae())
    history = model.fit_prior(
        X,
        validation_data=(X[:16],),
        prior=small_prior(),
        epochs=1,
        batch_size=16,
        verbose=0,
    )
    assert {"loss", "bits_per_code", "val_bits_per_code"} <= set(history.history)
    return model


def test_prior_samples_and_is_trained_apart(with_prior):
    model = with_prior
    samples = model.sample(5, seed=1)
    assert samples.shape == (5, 8, 8, 1)
    np.testing.assert_allclose(samples, model.sample(5, seed=1))
    # The VQ-VAE's own training leaves the prior alone.
    prior_ids = {id(v) for v in model.prior.weights}
    assert not prior_ids & {id(v) for v in model.trainable_variables}
    prior_before = numpy(model.prior.weights)
    model.fit(X[:16], epochs=1, batch_size=16, verbose=0)
    for old, new in zip(prior_before, numpy(model.prior.weights)):
        np.testing.assert_array_equal(old, new)


@pytest.mark.slow
def test_saved_with_prior_and_loads_on_other_backends(with_prior, tmp_path):
    model = with_prior
    config = model.get_config()
    assert config["prior"]["class_name"] == "TransformerPrior"
    clone = assert_config_round_trip(model)
    assert isinstance(clone.prior, TransformerPrior)
    # Five images or samples throughout (JAX compiles each eager op once
    # per shape: the other tests of this model use five too).
    loaded = assert_saved_model_round_trip(model, X[:5], "reconstruct", tmp_path, atol=1e-5)
    np.testing.assert_array_equal(loaded.encode(X), model.encode(X))
    np.testing.assert_allclose(loaded.sample(5, seed=3), model.sample(5, seed=3), atol=1e-5)
    np.testing.assert_allclose(
        loaded.prior.log_prob(model.encode(X[:5])),
        model.prior.log_prob(model.encode(X[:5])),
        rtol=1e-5,
    )
    # EMA codebook state is saved too: training resumes from it.
    for a, b in zip(numpy(model.quantizer.weights), numpy(loaded.quantizer.weights)):
        np.testing.assert_array_equal(a, b)
    loaded.fit_prior(X, epochs=1, batch_size=32, verbose=0)  # prior keeps training
    (tmp_path / "other").mkdir()
    reports = run_on_other_backends(model, X[:5], "reconstruct", tmp_path / "other", atol=1e-4)
    assert tuple(reports) == ring_backends(1)
    assert all(report["keras_max_diff"] <= 1e-4 for report in reports.values())


def test_bad_inputs_raise_clear_errors():
    model = small_vq_vae()
    with pytest.raises(ValueError, match="channel axis"):
        model.encode(X[..., 0])
    with pytest.raises(ValueError, match="floating-point"):
        model.encode((X * 255).astype("uint8"))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        model.decode_indices(np.full((2, 2, 2), 8))
    with pytest.raises(ValueError, match="shape"):
        model.decode_indices(np.zeros((2, 3, 3), "int32"))
    with pytest.raises(ValueError, match="grid"):
        model.fit_prior(X, prior=TransformerPrior((3, 3), num_embeddings=8))
    with pytest.raises(ValueError, match="divisible"):
        small_vq_vae(input_shape=(10, 10, 1))


@pytest.mark.slow
def test_export_signatures_match_the_model(with_prior, tmp_path):
    import tensorflow as tf

    model = with_prior
    path = kv.export_saved_model(model, tmp_path / "vq_vae")
    loaded = tf.saved_model.load(path)
    signatures = loaded.signatures
    images = tf.constant(X[:5])
    codes = model.encode(X[:5])
    encoded = signatures["encode"](images=images)["encoding_indices"]
    np.testing.assert_array_equal(encoded.numpy(), codes)
    decoded = signatures["decode"](encoding_indices=tf.constant(codes))
    np.testing.assert_allclose(decoded["images"].numpy(), model.decode_indices(codes), atol=1e-5)
    reconstruction = signatures["serving_default"](images=images)
    np.testing.assert_allclose(
        reconstruction["reconstruction"].numpy(),
        model.reconstruct(X[:5]),
        atol=1e-5,
    )
    seed = tf.constant(7, tf.int64)
    samples = signatures["sample"](num_samples=tf.constant(5), seed=seed)
    samples = samples["samples"].numpy()
    noise = tf.random.stateless_uniform((5, 4), seed=[7, 0]).numpy()
    expected = model.decode_indices(
        keras.ops.convert_to_numpy(model.prior.sample_from_uniform(noise))
    )
    np.testing.assert_allclose(samples, expected, atol=1e-5)
    score = signatures["score"](images=images)["score"].numpy()
    expected = keras.ops.convert_to_numpy(model.negative_log_likelihood_tensor(X[:5]))
    np.testing.assert_allclose(score, expected, rtol=1e-4)
    # On JAX and torch the export runs in a TF subprocess: RuntimeError.
    with pytest.raises((ValueError, RuntimeError), match="fit_prior"):
        kv.export_saved_model(small_vq_vae(), tmp_path / "no_prior")
