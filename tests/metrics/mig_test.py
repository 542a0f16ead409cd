import numpy as np
import pytest

from keras_vae.metrics import mutual_information_gap
from tests.metrics import disentanglement_cases as cases


def mig(representation, **kwargs):
    return mutual_information_gap(
        representation,
        cases.observe,
        cases.NUM_VALUES,
        num_samples=5000,
        **kwargs,
    )


def test_perfect_and_entangled_representations():
    perfect = mig(cases.perfect)
    entangled = mig(cases.entangled)
    rotated = mig(cases.rotated)
    assert perfect > 0.98
    assert entangled < 0.05
    assert entangled < rotated < perfect


def test_matrix_matches_the_closed_form():
    value, information, entropies = mig(cases.perfect, return_matrix=True)
    assert information.shape == (6, 4) and entropies.shape == (4,)
    # Uniform factors of 4 values: H = log 4; code j holds factor order[j].
    np.testing.assert_allclose(entropies, np.log(4), atol=0.01)
    for code, factor in enumerate([2, 0, 3, 1]):
        np.testing.assert_allclose(information[code, factor], np.log(4), atol=0.01)
    np.testing.assert_allclose(information[4:], 0.0, atol=1e-12)  # constant codes
    assert value == pytest.approx(
        np.mean((np.sort(information, 0)[-1] - np.sort(information, 0)[-2]) / entropies)
    )


def test_is_deterministic_and_binning_dependent():
    assert mig(cases.rotated) == mig(cases.rotated)
    assert mig(cases.rotated, seed=1) != mig(cases.rotated)
    # A single code: the gap is the information of the best code alone.
    first = mutual_information_gap(lambda x: x[:, :1], cases.observe, (4, 2), num_samples=2000)
    assert first == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_samples": 0}, ValueError, "num_samples"),
        ({"images_fn": "cifar"}, ValueError, "ground-truth"),
        ({"images_fn": 3}, TypeError, "images_fn"),
        ({"num_values": None}, ValueError, "num_values"),
        ({"num_values": (4, 1)}, ValueError, "at least 2"),
        ({"images_fn": "sprites", "num_values": (4, 4)}, ValueError, "factors"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, message):
    args = {
        "images_fn": cases.observe,
        "num_values": cases.NUM_VALUES,
        **kwargs,
    }
    with pytest.raises(error, match=message):
        mutual_information_gap(cases.perfect, **args)


def test_bad_representations_raise_clear_errors():
    with pytest.raises(ValueError, match="shape"):
        mig(lambda x: x[:, 0])
    with pytest.raises(ValueError, match="NaN"):
        mig(lambda x: np.full(x.shape, np.nan))
    with pytest.raises(TypeError, match="encode"):
        mig(42)
