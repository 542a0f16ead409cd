import keras
import numpy as np
import pytest
from keras import ops

from keras_vae import losses
from keras_vae.layers import InverseAutoregressiveFlow
from tests.test_case import assert_config_round_trip

RNG = np.random.default_rng(0)
DIM, CONTEXT = 4, 3


def flow_with_random_weights(**kwargs):
    args = dict(num_steps=2, hidden_dims=(8, 8), forget_bias=1.0)
    flow = InverseAutoregressiveFlow(**{**args, **kwargs})
    flow(np.zeros((1, DIM), "float32"), np.zeros((1, CONTEXT), "float32"))
    # Non-zero biases and larger weights: a flow far from the identity.
    flow.set_weights([RNG.normal(size=w.shape).astype("float32") * 0.7 for w in flow.weights])
    return flow


def numpy_step(flow, index, z, context):
    """One IAF step in float64 NumPy from the layer's weights and masks."""
    hidden = z
    network = flow.networks[index]
    for i, layer in enumerate(network):
        kernel = np.asarray(ops.convert_to_numpy(layer.kernel), "float64") * layer.mask
        hidden = hidden @ kernel + ops.convert_to_numpy(layer.bias)
        if i == 0:
            projection = flow.context_projections[index].kernel
            hidden = hidden + context @ ops.convert_to_numpy(projection)
        if i < len(network) - 1:
            hidden = np.where(hidden > 0, hidden, np.expm1(hidden))  # elu
    m, s = hidden[..., :DIM], hidden[..., DIM:]
    sigma = 1.0 / (1.0 + np.exp(-(s + flow.forget_bias)))
    return sigma * z + (1.0 - sigma) * m, np.log(sigma)


def numpy_flow(flow, z, context):
    log_det = np.zeros_like(z)
    for index in range(flow.num_steps):
        z, log_sigma = numpy_step(flow, index, z, context)
        log_det = log_det + log_sigma
    return z, log_det


def jacobian(fn, z, h=1e-6):
    """d fn(z)_i / d z_j by central differences, for one example `z` (D,)."""
    columns = []
    for j in range(len(z)):
        step = np.zeros_like(z)
        step[j] = h
        columns.append((fn(z + step) - fn(z - step)) / (2 * h))
    return np.stack(columns, axis=1)


def test_matches_numpy_and_the_change_of_variables():
    flow = flow_with_random_weights()
    z0 = RNG.normal(size=(5, DIM))
    context = RNG.normal(size=(5, CONTEXT))
    z, log_det = (ops.convert_to_numpy(t) for t in flow(z0.astype("float32"), context))
    expected_z, expected_log_det = numpy_flow(flow, z0, context)
    np.testing.assert_allclose(z, expected_z, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(log_det, expected_log_det, rtol=1e-4, atol=1e-5)
    assert log_det.dtype == np.float32
    # log|det dz/dz0| by finite differences of the NumPy flow equals the
    # layer's log-determinant, so log q(z) = log N(z0) - log|det J|.
    mean = RNG.normal(size=(5, DIM))
    log_var = RNG.normal(size=(5, DIM)) * 0.3
    log_q = ops.convert_to_numpy(
        ops.sum(losses.flow_log_prob(z0, mean, log_var, log_det), axis=-1)
    )
    for n in range(5):
        jac = jacobian(lambda v, n=n: numpy_flow(flow, v[None], context[n : n + 1])[0][0], z0[n])
        log_abs_det = np.linalg.slogdet(jac)[1]
        np.testing.assert_allclose(log_det[n].sum(), log_abs_det, rtol=1e-4, atol=1e-4)
        base = -0.5 * np.sum(
            np.log(2 * np.pi) + log_var[n] + (z0[n] - mean[n]) ** 2 / np.exp(log_var[n])
        )
        np.testing.assert_allclose(log_q[n], base - log_abs_det, rtol=1e-4, atol=1e-4)


def test_each_step_is_autoregressive_in_alternating_orders():
    flow = flow_with_random_weights()
    z0 = RNG.normal(size=DIM)
    context = RNG.normal(size=(1, CONTEXT))
    for index, lower in ((0, True), (1, False)):
        # The step's Jacobian is triangular (lower in the order 1..D, upper
        # after the reversal), with diagonal sigma = exp(log_sigma).
        jac = jacobian(lambda v, i=index: numpy_step(flow, i, v[None], context)[0][0], z0)
        strict = np.triu(jac, 1) if lower else np.tril(jac, -1)
        np.testing.assert_array_equal(strict, 0.0)
        _, log_sigma = numpy_step(flow, index, z0[None], context)
        np.testing.assert_allclose(np.diag(jac), np.exp(log_sigma[0]), rtol=1e-5)
        # The layer itself: moving a later input leaves earlier outputs
        # bit-identical (the masks cut those paths exactly).
        x = np.tile(z0.astype("float32"), (DIM, 1))
        moved = x + 10.0 * np.eye(DIM, dtype="float32")
        out = ops.convert_to_numpy(flow.step(x, context.astype("float32"), index)[0])
        out_moved = ops.convert_to_numpy(flow.step(moved, context.astype("float32"), index)[0])
        for j in range(DIM):
            unaffected = np.arange(DIM) < j if lower else np.arange(DIM) > j
            np.testing.assert_array_equal(out_moved[j, unaffected], out[j, unaffected])
            assert np.all(out_moved[j, ~unaffected] != out[j, ~unaffected])


def test_samples_broadcast_against_the_context_and_one_dimension_works():
    flow = flow_with_random_weights()
    z = RNG.normal(size=(3, 5, DIM)).astype("float32")  # 3 samples of 5 examples
    context = RNG.normal(size=(5, CONTEXT)).astype("float32")
    out, log_det = flow(z, context)
    first, first_log_det = flow(z[1], context)
    np.testing.assert_allclose(ops.convert_to_numpy(out)[1], ops.convert_to_numpy(first), atol=1e-6)
    np.testing.assert_allclose(
        ops.convert_to_numpy(log_det)[1], ops.convert_to_numpy(first_log_det), atol=1e-6
    )
    single = InverseAutoregressiveFlow(num_steps=3, hidden_dims=(4,))
    out, log_det = single(np.ones((2, 1), "float32"), np.ones((2, 2), "float32"))
    assert tuple(out.shape) == tuple(log_det.shape) == (2, 1)


def test_mixed_precision_keeps_the_log_determinant_in_float32():
    flow = InverseAutoregressiveFlow(num_steps=2, hidden_dims=(4,), dtype="mixed_float16")
    z, log_det = flow(RNG.normal(size=(2, 3)).astype("float32"))
    assert keras.backend.standardize_dtype(z.dtype) == "float16"
    assert keras.backend.standardize_dtype(log_det.dtype) == "float32"


def test_config_round_trip_and_bad_arguments():
    flow = InverseAutoregressiveFlow(num_steps=3, hidden_dims=(5,), forget_bias=2.0, name="f")
    clone = assert_config_round_trip(flow)
    assert (clone.num_steps, clone.hidden_dims, clone.forget_bias) == (3, (5,), 2.0)
    with pytest.raises(ValueError, match="num_steps"):
        InverseAutoregressiveFlow(num_steps=0)
    with pytest.raises(ValueError, match="hidden_dims"):
        InverseAutoregressiveFlow(hidden_dims=(0,))
    built = flow_with_random_weights()
    with pytest.raises(ValueError, match="built with a context"):
        built(np.zeros((1, DIM), "float32"))
