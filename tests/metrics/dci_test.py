import sys

import numpy as np
import pytest

from keras_vae.metrics import dci_disentanglement
from tests.metrics import disentanglement_cases as cases


def dci(representation, **kwargs):
    args = dict(num_train=1000, num_test=500, predictor="lasso", return_all=True)
    return dci_disentanglement(
        representation, cases.observe, cases.NUM_VALUES, **{**args, **kwargs}
    )


def test_perfect_and_entangled_representations_lasso():
    perfect = dci(cases.perfect)
    assert perfect["disentanglement"] > 0.98 and perfect["completeness"] > 0.98
    assert perfect["informativeness_test"] > 0.98
    assert perfect["importance"].shape == (6, 4)
    entangled = dci(cases.entangled)
    assert entangled["disentanglement"] < 0.05 and entangled["completeness"] < 0.05
    assert entangled["informativeness_test"] > 0.98  # all the information is there
    rotated = dci(cases.rotated)["disentanglement"]
    assert entangled["disentanglement"] < rotated < perfect["disentanglement"]


def test_perfect_and_entangled_representations_gradient_boosting():
    # Two binary factors keep the 100-stage boosting fast.
    def mixed(x):
        return (x - 0.5) @ (np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2))

    args = dict(num_train=400, num_test=200)
    perfect = dci_disentanglement(lambda x: x - 0.5, cases.observe, (2, 2), **args)
    entangled = dci_disentanglement(mixed, cases.observe, (2, 2), return_all=True, **args)
    assert perfect > 0.95
    assert entangled["disentanglement"] < 0.1
    assert entangled["informativeness_test"] == 1.0


def test_weighting_ignores_unused_codes():
    # Zero codes have no importance, so they do not lower the score.
    padded = dci(lambda x: np.concatenate([cases.perfect(x), np.zeros((len(x), 5))], 1))
    assert padded["disentanglement"] > 0.98
    assert padded["completeness"] > 0.98


def test_clear_errors(monkeypatch):
    with pytest.raises(ValueError, match="predictor"):
        dci(cases.perfect, predictor="svm")
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match="keras-vae\\[disentanglement\\]"):
        dci(cases.perfect)
