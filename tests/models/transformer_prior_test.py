import math

import keras
import numpy as np
import pytest

from keras_vae.models import TransformerPrior
from tests.test_case import assert_config_round_trip

RNG = np.random.default_rng(0)
CODES = RNG.integers(0, 5, (32, 2, 3)).astype("int32")


def prior(**kwargs):
    args = dict(
        num_embeddings=5, embed_dim=8, num_layers=1, num_heads=2, seed=0
    )
    return TransformerPrior((2, 3), **{**args, **kwargs})


def test_causal_and_nll_matches_log_prob():
    model = prior(num_layers=2)
    logits = keras.ops.convert_to_numpy(model(CODES[:4])["logits"]).reshape(
        4, 6, 5
    )
    changed = CODES[:4].copy()
    changed[:, 1, 0] = (changed[:, 1, 0] + 1) % 5  # position 3
    other = keras.ops.convert_to_numpy(model(changed)["logits"]).reshape(
        4, 6, 5
    )
    # Position t predicts code t from codes < t: 0..3 see nothing changed.
    np.testing.assert_allclose(logits[:, :4], other[:, :4], atol=1e-5)
    assert not np.allclose(logits[:, 4:], other[:, 4:])

    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    flat = CODES[:4].reshape(4, 6)
    expected = np.take_along_axis(log_softmax, flat[..., None], -1).sum((1, 2))
    np.testing.assert_allclose(model.log_prob(CODES[:4]), expected, rtol=1e-5)
    bits = -expected.mean() / 6 / math.log(2)
    np.testing.assert_allclose(model.bits_per_code(CODES[:4]), bits, rtol=1e-5)


def test_fit_sample_and_config():
    model = prior()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(CODES, epochs=2, batch_size=16, verbose=0)
    assert sorted(history.history) == ["bits_per_code", "loss"]
    np.testing.assert_allclose(
        history.history["bits_per_code"],
        np.array(history.history["loss"]) / math.log(2),
        rtol=1e-5,
    )
    samples = model.sample(5, seed=0, batch_size=2)
    assert samples.shape == (5, 2, 3) and samples.dtype == np.int32
    assert samples.min() >= 0 and samples.max() < 5
    np.testing.assert_array_equal(
        samples, model.sample(5, seed=0, batch_size=2)
    )
    assert_config_round_trip(model)


def test_bad_inputs():
    model = prior()
    with pytest.raises(ValueError, match="integer"):
        model.log_prob(CODES.astype("float32"))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        model.log_prob(CODES + 5)
    with pytest.raises(ValueError, match="shape"):
        model.fit(CODES.reshape(32, 6), epochs=1)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=0.0)


def test_a_seed_draws_the_same_codes_on_every_backend():
    # NumPy draws the uniform noise, batch by batch; the codes are its
    # inverse CDF under the prior, so only the prior's numerics (the same
    # weights on any backend) decide them.
    model = prior()
    rng = np.random.default_rng(3)
    noise = [rng.random((2, 6), dtype="float32"), rng.random((1, 6), dtype="float32")]
    expected = np.concatenate(
        [keras.ops.convert_to_numpy(model.sample_from_uniform(u)) for u in noise]
    )
    np.testing.assert_array_equal(model.sample(3, seed=3, batch_size=2), expected)
