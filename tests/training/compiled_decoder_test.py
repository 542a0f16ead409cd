"""When importance-sampled evaluation compiles its decoder
(`keras_vae.training.compiled_decoder`; the scorer's use of it is in
tests/models/importance_scorer_test.py). The policy is plain Python and is
checked as such on every backend; `keras_vae.training.compiles_decoders`
is the policy on torch and `False` on TensorFlow and JAX."""

import keras
import pytest

from keras_vae import training
from keras_vae.training import compiled_decoder


@pytest.mark.parametrize(
    "setting, draws, expected",
    [
        (None, compiled_decoder.COMPILE_MIN_DRAWS - 1, False),
        (None, compiled_decoder.COMPILE_MIN_DRAWS, True),
        ("", compiled_decoder.COMPILE_MIN_DRAWS, True),
        ("auto", 10, False),
        ("1", 10, True),
        (" True ", 10, True),
        ("0", 10**9, False),
    ],
)
def test_the_setting_and_the_draw_count_decide(monkeypatch, setting, draws, expected):
    if setting is None:
        monkeypatch.delenv(compiled_decoder.TORCH_COMPILE_ENV, raising=False)
    else:
        monkeypatch.setenv(compiled_decoder.TORCH_COMPILE_ENV, setting)
    assert compiled_decoder.compiles_decoders(draws) is expected
    on_torch = keras.backend.backend() == "torch"
    assert training.compiles_decoders(draws) is (expected and on_torch)


def test_an_unknown_setting_is_refused(monkeypatch):
    monkeypatch.setenv(compiled_decoder.TORCH_COMPILE_ENV, "sometimes")
    with pytest.raises(ValueError, match="KERAS_VAE_TORCH_COMPILE must be 0, 1 or auto"):
        compiled_decoder.compiles_decoders(10)
