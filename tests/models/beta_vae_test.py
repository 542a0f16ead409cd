import keras
import numpy as np
import pytest

from keras_vae.models import VAE, BetaVAE
from tests.test_case import (
    assert_config_round_trip,
    assert_saved_model_round_trip,
)

RNG = np.random.default_rng(0)
X = (RNG.random((64, 8, 8, 1)) > 0.6).astype("float32")


def small_beta_vae(**kwargs):
    args = dict(input_shape=(8, 8, 1), latent_dim=3, hidden_dims=(4, 8), seed=0)
    return BetaVAE(**{**args, **kwargs})


def trained(model, steps=4):
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(X[: 16 * steps], epochs=1, batch_size=16, verbose=0)
    return model


def full_batch_logs(model):
    # One batch, so the logged means satisfy the (nonlinear) objective exactly.
    return model.evaluate(X, batch_size=len(X), verbose=0, return_dict=True)


def test_beta_composes_with_warmup_and_keeps_the_vae_verbs():
    model = trained(small_beta_vae(beta=3.0, kl_warmup_steps=100))  # 4 steps
    assert isinstance(model, VAE)
    logs = full_batch_logs(model)
    weight = 3.0 * (4 + 1) / 100
    expected = logs["reconstruction_loss"] + weight * logs["kl_loss"]
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)
    z_mean, _ = model.encode(X[:5])
    assert z_mean.shape == (5, 3)
    assert model.decode(z_mean).shape == (5, 8, 8, 1)


def test_capacity_schedule_under_jit():
    # The default compile jit-compiles the step on TensorFlow and JAX.
    model = small_beta_vae(capacity_max=20.0, capacity_steps=8, gamma=100.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    kl_before = full_batch_logs(model)["kl_loss"]
    model.fit(X, epochs=1, batch_size=16, verbose=0)  # 4 steps: C = 10
    assert int(keras.ops.convert_to_numpy(model.steps_trained)) == 4
    logs = full_batch_logs(model)
    expected = logs["reconstruction_loss"] + 100.0 * abs(logs["kl_loss"] - 10.0)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)
    model.fit(X, epochs=5, batch_size=16, verbose=0)  # C saturates at 20
    logs = full_batch_logs(model)
    expected = logs["reconstruction_loss"] + 100.0 * abs(logs["kl_loss"] - 20.0)
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-5)
    # The large gamma drives the KL up towards C from its initial ~0 nats.
    assert kl_before < 1.0
    assert abs(logs["kl_loss"] - 20.0) < abs(kl_before - 20.0) - 4.0


def test_capacity_values():
    model = small_beta_vae(capacity_max=25.0, capacity_steps=100)
    for step, value in [(0, 0.0), (50, 12.5), (100, 25.0), (1000, 25.0)]:
        c = keras.ops.convert_to_numpy(model.capacity(float(step)))
        np.testing.assert_allclose(c, value, rtol=1e-6)
    constant = small_beta_vae(capacity_max=7.0, capacity_steps=0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(constant.capacity(0.0)), 7.0)


def test_config_and_keras_file_round_trip(tmp_path):
    beta = small_beta_vae(beta=6.0)
    assert beta.get_config()["beta"] == 6.0
    assert_config_round_trip(beta)
    kwargs = {"capacity_max": 25.0, "capacity_steps": 1000, "gamma": 100.0}
    model = trained(small_beta_vae(**kwargs))
    config = model.get_config()
    for key, value in kwargs.items():
        assert config[key] == value
    clone = assert_config_round_trip(model)
    assert isinstance(clone, BetaVAE)
    loaded = assert_saved_model_round_trip(model, X[:8], "encode", tmp_path)
    assert isinstance(loaded, BetaVAE) and loaded.capacity_max == 25.0
    assert int(keras.ops.convert_to_numpy(loaded.steps_trained)) == 4
    loaded.fit(X[:32], epochs=1, batch_size=16, verbose=0)  # keeps training
    assert int(keras.ops.convert_to_numpy(loaded.steps_trained)) == 6


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": -1.0}, "beta"),
        ({"gamma": -1.0}, "gamma"),
        ({"capacity_max": -5.0}, "capacity_max"),
        ({"capacity_max": 5.0, "capacity_steps": -1}, "capacity_steps"),
        ({"capacity_max": 5.0, "free_bits": 0.5}, "free_bits"),
        ({"capacity_max": 5.0, "kl_warmup_steps": 10}, "kl_warmup_steps"),
        ({"latent_dim": 0}, "latent_dim"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_beta_vae(**kwargs)
