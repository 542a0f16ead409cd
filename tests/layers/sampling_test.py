import keras
import numpy as np
from keras import ops

from keras_vae.layers import Sampling
from tests.test_case import assert_config_round_trip


def test_moments():
    mean = np.full((50000, 2), [1.0, -2.0], "float32")
    log_var = np.full((50000, 2), np.log([0.25, 4.0]), "float32")
    z = ops.convert_to_numpy(Sampling(seed=3)([mean, log_var]))
    np.testing.assert_allclose(z.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(0), [0.5, 2.0], rtol=0.03)


def test_seeded_and_advances():
    inputs = [np.zeros((4, 3), "float32")] * 2
    a, b = Sampling(seed=7), Sampling(seed=7)
    first = ops.convert_to_numpy(a(inputs))
    np.testing.assert_allclose(first, ops.convert_to_numpy(b(inputs)))
    assert not np.allclose(first, ops.convert_to_numpy(a(inputs)))


def test_config():
    clone = assert_config_round_trip(Sampling(seed=5, name="s"))
    assert clone.seed == 5
    assert isinstance(clone.seed_generator, keras.random.SeedGenerator)
