import keras
import numpy as np

from keras_vae.samplers import GreedySampler, get
from tests.samplers import toy


def test_greedy_follows_the_most_likely_token_and_pads_after_eos():
    ids = toy.run(GreedySampler())
    # <bos> -> 3 -> 5 -> 2 (<eos>), then <pad>.
    np.testing.assert_array_equal(ids, [[3, 5, 2, 0, 0, 0, 0]] * 3)


def test_rows_that_never_end_stop_at_max_length():
    no_eos = keras.ops.convert_to_tensor(np.where(np.arange(6) == toy.EOS, -1e9, 0.0), "float32")

    def step(tokens, state):
        log_probs, state = toy.step(tokens, state)
        return log_probs + no_eos, state

    ids = GreedySampler()(step, toy.initial_state(2), toy.BOS, toy.EOS, toy.PAD, max_length=4)
    ids = keras.ops.convert_to_numpy(ids)
    assert ids.shape == (2, 5)
    assert toy.EOS not in ids[:, :4] and np.all(ids[:, 4] == toy.PAD)


def test_get_returns_a_sampler_as_is():
    sampler = GreedySampler()
    assert get(sampler) is sampler
    assert isinstance(get("greedy"), GreedySampler)
