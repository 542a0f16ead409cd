"""The chunk cache of `cached_log_likelihood` is keyed by the weights, the
data and the seed: a re-evaluation after more training must not reuse the
numbers of the old weights."""

import numpy as np

import keras_vae as kv
from keras_vae.runner.evaluation import cached_log_likelihood, fingerprint


def tiny_model():
    return kv.VAE(
        input_shape=(4, 4, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,), seed=0
    )


def test_cache_is_reused_for_the_same_weights_only(tmp_path):
    model = tiny_model()
    x = (np.random.default_rng(0).random((6, 4, 4, 1)) < 0.5).astype("float32")
    first, _ = cached_log_likelihood(model, x, 4, 0, tmp_path, chunk=3)
    assert len(list(tmp_path.glob("ll_k4_n6_chunk3_*.npz"))) == 1

    # Same weights, data and seed: the cached numbers come back as they are
    # (even if the cache file were edited, it is read, not recomputed).
    (cache,) = tmp_path.glob("*.npz")
    parts = dict(np.load(cache))
    parts["0"] = parts["0"] + 1000.0
    np.savez(cache, **parts)
    reused, _ = cached_log_likelihood(model, x, 4, 0, tmp_path, chunk=3)
    np.testing.assert_allclose(reused[:3], first[:3] + 1000.0)

    # New weights (as after more training): computed afresh, in a new file.
    weights = model.get_weights()
    model.set_weights([w + 0.5 for w in weights])
    after, _ = cached_log_likelihood(model, x, 4, 0, tmp_path, chunk=3)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not np.allclose(after, reused)
    model.set_weights(weights)
    np.testing.assert_allclose(
        cached_log_likelihood(model, x, 4, 0, tmp_path, chunk=3)[0], reused
    )


def test_fingerprint_follows_weights_data_and_seed():
    model = tiny_model()
    x = np.zeros((2, 4, 4, 1), "float32")
    key = fingerprint(model, x, 0)
    assert fingerprint(model, x.copy(), 0) == key
    assert fingerprint(model, x + 1, 0) != key
    assert fingerprint(model, x, 1) != key
    model.set_weights([w * 2 + 1 for w in model.get_weights()])
    assert fingerprint(model, x, 0) != key
    sentences = ["the cat", "a dog"]
    assert fingerprint(model, sentences, 0) != fingerprint(model, sentences[::-1], 0)
