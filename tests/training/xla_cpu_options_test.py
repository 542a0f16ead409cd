"""keras_vae.training.xla_cpu_options: the XLA:CPU options of the library's
compiled functions on JAX (convolutions on XLA's own kernels), none elsewhere."""

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae.training import xla_cpu_options

BACKEND = keras.backend.backend()


def test_options_apply_on_jax_only_and_turn_off_with_the_environment(monkeypatch):
    expected = xla_cpu_options.CPU_OPTIONS if BACKEND == "jax" else {}
    assert xla_cpu_options.options() == expected
    monkeypatch.setenv(xla_cpu_options.XLA_CPU_OPTIONS_ENV, "0")
    assert xla_cpu_options.options() == {}


def test_keras_compiles_with_the_options_inside_the_context_only():
    if BACKEND != "jax":
        with xla_cpu_options.keras_jit_options():  # nothing to do, nothing changes
            assert xla_cpu_options.options() == {}
        return
    import jax
    from keras.src.backend.jax import trainer

    def conv(x, kernel):
        numbers = ("NHWC", "HWIO", "NHWC")
        return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=numbers)

    # (XLA gives a convolution to YNNPACK from 32 input channels on.)
    x, kernel = np.ones((2, 7, 7, 64), "float32"), np.ones((3, 3, 64, 64), "float32")

    def convolutions_in_ynnpack(jit):  # the function's one op is the convolution
        return "__ynn_fusion" in jit(conv).lower(x, kernel).compile().as_text()

    with xla_cpu_options.keras_jit_options():
        assert trainer.jit is not jax.jit
        assert not convolutions_in_ynnpack(trainer.jit)
    assert trainer.jit is jax.jit
    assert convolutions_in_ynnpack(trainer.jit)  # XLA's default, which the options change


def test_log_likelihood_is_the_same_with_and_without_the_options(monkeypatch):
    model = kv.VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4, 8), seed=0)
    x = (np.random.default_rng(0).random((3, 8, 8, 1)) > 0.5).astype("float32")
    with_options = model.log_likelihood(x, num_samples=30, seed=1)
    monkeypatch.setenv(xla_cpu_options.XLA_CPU_OPTIONS_ENV, "0")
    without = kv.VAE.from_config(model.get_config())
    without.set_weights(model.get_weights())
    np.testing.assert_allclose(
        without.log_likelihood(x, num_samples=30, seed=1), with_options, rtol=1e-5
    )


@pytest.mark.parametrize("value", ["", "1"])
def test_any_other_value_keeps_the_options(monkeypatch, value):
    monkeypatch.setenv(xla_cpu_options.XLA_CPU_OPTIONS_ENV, value)
    assert xla_cpu_options.options() == (xla_cpu_options.CPU_OPTIONS if BACKEND == "jax" else {})
