import itertools

import numpy as np
import pytest

from keras_vae.samplers import BeamSampler, GreedySampler
from tests.samplers import toy


def best_sentence(max_length):
    """The most likely sentence of at most `max_length` words, by brute
    force over every sequence of the toy's words."""
    best, best_score = None, -np.inf
    for length in range(max_length + 1):
        for words in itertools.product([3, 4, 5], repeat=length):
            ids = [*words, toy.EOS]
            score = toy.log_prob(ids)
            if score > best_score:
                best, best_score = ids, score
    return best, best_score


def test_beam_finds_the_most_likely_sentence_that_greedy_misses():
    # Greedy takes 3 (0.5) then 5 ... ; the best sentence is 4 <eos>
    # (0.45 * 0.9 = 0.405).
    expected, score = best_sentence(4)
    assert expected == [4, toy.EOS]
    beam = toy.run(BeamSampler(num_beams=3), batch=2, max_length=4)
    np.testing.assert_array_equal(beam, [[4, 2, 0, 0, 0]] * 2)
    greedy = toy.run(GreedySampler(), batch=1, max_length=4)[0]
    assert toy.log_prob(greedy) < score


def test_one_beam_is_greedy_and_bad_width_is_refused():
    np.testing.assert_array_equal(
        toy.run(BeamSampler(num_beams=1)), toy.run(GreedySampler())
    )
    with pytest.raises(ValueError, match="num_beams"):
        BeamSampler(num_beams=0)
    assert BeamSampler(3).get_config() == {"num_beams": 3}
