import numpy as np
import pytest

from keras_vae.metrics import factor_vae_score
from tests.metrics import disentanglement_cases as cases


def score(representation, **kwargs):
    args = dict(
        num_train=400,
        num_eval=400,
        samples_per_vote=32,
        num_variance_estimate=2000,
    )
    return factor_vae_score(representation, cases.observe, cases.NUM_VALUES, **{**args, **kwargs})


def test_perfect_and_entangled_representations():
    # The perfect case has two constant (pruned) codes and a shuffled order.
    assert score(cases.perfect) == 1.0
    entangled = score(cases.entangled)
    assert entangled < 0.45  # chance is 0.25
    assert score(cases.perfect, seed=3) == 1.0


def test_scale_invariance_and_collapsed_codes():
    def stretched(x):
        return cases.perfect(x) * np.array([100.0, 0.1, 1, 1, 1, 1])

    assert score(stretched) == 1.0
    assert score(lambda x: np.zeros((len(x), 3))) == 0.0

    # No code captures factor 1: its votes go anywhere, so about 3 of 4
    # factors are classified right.
    def three_codes(x):
        return cases.perfect(x)[:, :3]

    assert 0.6 < score(three_codes) <= 0.85


def test_exclude_inactive_drops_the_votes_of_a_collapsed_code():
    # Factor 3 lives only in a code of standard deviation 0.07: above the
    # prune threshold (0.05), so it votes by default, but inactive by the
    # active-units criterion (variance 0.0049 <= 0.01).
    def residue(x):
        codes = cases.perfect(x)[:, :4]
        codes[:, 2] *= 0.07  # perfect() puts factor 3 in code 2
        return codes

    assert score(residue) == 1.0
    without = score(residue, exclude_inactive=True)
    assert without == score(lambda x: cases.perfect(x)[:, [0, 1, 3]])
    assert 0.6 < without <= 0.85
    # With every code active the two scores are the same.
    assert score(cases.rotated, exclude_inactive=True) == score(cases.rotated)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"samples_per_vote": 1}, "samples_per_vote"),
        ({"num_train": 0}, "num_train"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        score(cases.perfect, **kwargs)
