import numpy as np
import pytest

from keras_vae.samplers import GreedySampler, RandomSampler, get
from tests.samplers import toy


def test_a_seed_gives_the_same_tokens_and_the_stream_goes_on():
    first = toy.run(RandomSampler(seed=3), batch=16)
    assert np.array_equal(first, toy.run(RandomSampler(seed=3), batch=16))
    sampler = RandomSampler(seed=3)
    toy.run(sampler, batch=16)
    assert not np.array_equal(first, toy.run(sampler, batch=16))
    # Never a banned (zero-probability) transition.
    assert all(np.isfinite(toy.log_prob(row)) for row in first)


def test_draws_follow_the_softmax_at_the_temperature():
    # First token after <bos>: 3 with p = 0.5 / (0.5 + 0.45 + 0.05).
    first = toy.run(RandomSampler(seed=0), batch=4000, max_length=1)[:, 0]
    np.testing.assert_allclose(np.mean(first == 3), 0.5, atol=0.03)
    # At T = 0.25 the odds 0.5 : 0.45 become (0.5 / 0.45) ** 4 : 1.
    cold = toy.run(RandomSampler(temperature=0.25, seed=0), batch=4000, max_length=1)[:, 0]
    p3 = 0.5**4 / (0.5**4 + 0.45**4 + 0.05**4)
    np.testing.assert_allclose(np.mean(cold == 3), p3, atol=0.03)


def test_top_k_draws_among_the_k_most_likely():
    ids = toy.run(RandomSampler(top_k=2, seed=1), batch=500, max_length=1)[:, 0]
    assert set(ids.tolist()) == {3, 4}  # never <eos> (p = 0.05) first
    greedy = toy.run(GreedySampler(), batch=4)
    np.testing.assert_array_equal(toy.run(RandomSampler(top_k=1, seed=2), batch=4), greedy)


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="temperature"):
        RandomSampler(temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        RandomSampler(top_k=0)
    with pytest.raises(ValueError, match="decoding"):
        get("nucleus")
    config = RandomSampler(temperature=0.5, top_k=3, seed=4).get_config()
    assert config == {"temperature": 0.5, "top_k": 3, "seed": 4}
    assert RandomSampler.from_config(config).get_config() == config
