import numpy as np
import pytest
from keras import ops

from keras_vae.layers import DepthToSpace
from tests.test_case import assert_config_round_trip


def numpy_depth_to_space(x, r):
    n, h, w, c = x.shape
    x = x.reshape(n, h, w, r, r, c // (r * r)).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h * r, w * r, c // (r * r))


def test_matches_numpy_and_tf_convention():
    x = np.arange(2 * 3 * 3 * 8, dtype="float32").reshape(2, 3, 3, 8)
    y = ops.convert_to_numpy(DepthToSpace(2)(x))
    np.testing.assert_array_equal(y, numpy_depth_to_space(x, 2))
    # tf.nn.depth_to_space's documented example: [[[[1, 2, 3, 4]]]] -> 2x2.
    small = np.array([[[[1, 2, 3, 4]]]], "float32")
    np.testing.assert_array_equal(
        ops.convert_to_numpy(DepthToSpace(2)(small))[0, ..., 0], [[1, 2], [3, 4]]
    )


def test_bad_channels():
    with pytest.raises(ValueError, match="divisible by 4"):
        DepthToSpace(2)(np.zeros((1, 2, 2, 3), "float32"))


def test_config():
    assert assert_config_round_trip(DepthToSpace(3)).block_size == 3
