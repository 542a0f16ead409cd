import keras
import numpy as np
import pytest
from keras import ops

from keras_vae.layers import VectorQuantizer
from keras_vae.models.generative_model import GenerativeModel
from tests.test_case import assert_config_round_trip

RNG = np.random.default_rng(0)
K, D = 6, 3
INPUTS = RNG.normal(size=(4, 2, 2, D)).astype("float32")


def numpy(x):
    return ops.convert_to_numpy(x)


def reference_lookup(inputs, codebook):
    flat = inputs.reshape(-1, codebook.shape[1]).astype("float64")
    distances = ((flat[:, None, :] - codebook[None]) ** 2).sum(-1)
    indices = distances.argmin(1)
    return flat, indices, codebook[indices]


def reference_ema_step(flat, indices, state, decay=0.99, epsilon=1e-5):
    """One update of Sonnet's VectorQuantizerEMA (debiased averages)."""
    cluster_hidden, dw_hidden, counter = state
    encodings = np.eye(K)[indices]
    counter = counter + 1
    cluster_hidden = cluster_hidden - (cluster_hidden - encodings.sum(0)) * (
        1 - decay
    )
    dw_hidden = dw_hidden - (dw_hidden - encodings.T @ flat) * (1 - decay)
    cluster = cluster_hidden / (1 - decay**counter)
    dw = dw_hidden / (1 - decay**counter)
    n = cluster.sum()
    smoothed = (cluster + epsilon) / (n + K * epsilon) * n
    return dw / smoothed[:, None], (cluster_hidden, dw_hidden, counter)


def quantizer(**kwargs):
    return VectorQuantizer(
        K, D, seed=0, **{"dead_code_threshold": 0.0, **kwargs}
    )


@pytest.mark.parametrize("use_ema", [True, False])
def test_lookup_and_loss_match_numpy(use_ema):
    vq = quantizer(use_ema=use_ema, commitment_cost=0.3)
    codebook = numpy(vq.codebook).astype("float64")
    out = vq(INPUTS, return_encodings=True)
    flat, indices, quantized = reference_lookup(INPUTS, codebook)
    np.testing.assert_array_equal(
        numpy(out["encoding_indices"]).ravel(), indices
    )
    assert numpy(out["encoding_indices"]).shape == (4, 2, 2)
    np.testing.assert_allclose(
        numpy(out["quantize"]).reshape(-1, D), quantized, atol=1e-5
    )
    mse = ((quantized - flat) ** 2).mean()
    expected_loss = 0.3 * mse if use_ema else 1.3 * mse
    np.testing.assert_allclose(
        float(numpy(out["loss"])), expected_loss, rtol=1e-4
    )
    probs = np.bincount(indices, minlength=K) / len(indices)
    perplexity = np.exp(-(probs * np.log(probs + 1e-10)).sum())
    np.testing.assert_allclose(
        float(numpy(out["perplexity"])), perplexity, rtol=1e-5
    )
    np.testing.assert_array_equal(
        numpy(out["encodings"]).reshape(-1, K), np.eye(K)[indices]
    )
    np.testing.assert_allclose(
        numpy(vq.lookup(indices.reshape(4, 2, 2))).reshape(-1, D),
        quantized,
        atol=1e-6,
    )


def test_ema_update_matches_numpy_and_only_in_training():
    vq = quantizer()
    before = [numpy(v).copy() for v in vq.weights]
    vq(INPUTS, training=False)
    for old, var in zip(before, vq.weights):
        np.testing.assert_array_equal(numpy(var), old)  # inference: no change

    state = (np.zeros(K), np.zeros((K, D)), 0)
    codebook = numpy(vq.embeddings).astype("float64")
    for batch in (INPUTS, INPUTS[::-1] * 0.5 + 0.1):
        flat, indices, _ = reference_lookup(batch, codebook)
        codebook_np, state = reference_ema_step(flat, indices, state)
        # Codes never used keep a zero average: the layer's values are the
        # reference's (0 / smoothed count = 0) as well.
        vq(batch, training=True)
        np.testing.assert_allclose(
            numpy(vq.embeddings), codebook_np, rtol=1e-4, atol=1e-6
        )
        codebook = codebook_np
    np.testing.assert_allclose(
        numpy(vq.ema_cluster_size_hidden), state[0], rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        numpy(vq.ema_dw_hidden), state[1], rtol=1e-4, atol=1e-6
    )
    assert float(numpy(vq.counter)) == 2.0


def gradients(vq, x):
    """d(sum of quantize + loss)/d(inputs, codebook) on this backend."""
    backend = keras.backend.backend()
    x = ops.convert_to_tensor(x)
    if backend == "jax":
        import jax

        def f(x, table):
            with keras.StatelessScope(state_mapping=[(vq.embeddings, table)]):
                out = vq(x)
            return ops.sum(out["quantize"]) + out["loss"]

        return [
            np.asarray(g)
            for g in jax.grad(f, argnums=(0, 1))(x, vq.embeddings.value)
        ]
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            out = vq(x)
            total = tf.reduce_sum(out["quantize"]) + out["loss"]
        return [
            g.numpy() for g in tape.gradient(total, [x, vq.embeddings.value])
        ]
    import torch

    x = x.detach().requires_grad_(True)
    out = vq(x)
    total = torch.sum(out["quantize"]) + out["loss"]
    table = vq.embeddings.value
    grads = torch.autograd.grad(total, [x, table])
    return [g.detach().cpu().numpy() for g in grads]


def test_straight_through_and_codebook_gradients():
    vq = quantizer(use_ema=False, commitment_cost=0.25)
    codebook = numpy(vq.codebook).astype("float64")
    flat, indices, quantized = reference_lookup(INPUTS, codebook)
    grad_x, grad_table = gradients(vq, INPUTS)
    n = flat.size
    # Identity through the lookup, plus the commitment term 2*beta*(z-e)/n.
    expected_x = 1.0 + 2 * 0.25 * (flat - quantized) / n
    np.testing.assert_allclose(
        grad_x.reshape(-1, D), expected_x, rtol=1e-4, atol=1e-6
    )
    # The codebook loss pulls each used code towards its vectors.
    expected_table = np.zeros((K, D))
    np.add.at(expected_table, indices, 2 * (quantized - flat) / n)
    np.testing.assert_allclose(grad_table, expected_table, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("use_ema", [True, False])
def test_dead_codes_restart_from_inputs(use_ema):
    vq = quantizer(use_ema=use_ema, dead_code_threshold=1.0)
    # Every vector lands on one code; the others are dead.
    x = np.tile(numpy(vq.codebook)[:1], (16, 1)).reshape(4, 2, 2, D)
    x = x + RNG.normal(scale=1e-3, size=x.shape).astype("float32")
    before = numpy(vq.codebook)
    vq(x, training=True)
    codebook = numpy(vq.codebook)
    flat = x.reshape(-1, D)
    np.testing.assert_allclose(codebook[0], before[0], atol=1e-2)  # kept
    for k in range(1, K):  # restarted at one of the inputs
        assert np.min(np.abs(flat - codebook[k]).max(-1)) < 1e-5, k
    vq(x, training=False)
    np.testing.assert_allclose(numpy(vq.codebook), codebook)


class _TinyVQModel(GenerativeModel):
    loss_term_names = ("loss", "perplexity")

    def __init__(self, use_ema, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(D)
        self.dense.build((None, D))
        self.vq = VectorQuantizer(
            K, D, use_ema=use_ema, dead_code_threshold=0.5, seed=1
        )
        self.built = True

    def compute_loss_terms(self, x, training=False):
        out = self.vq(self.dense(x), training=training)
        return {"loss": out["loss"], "perplexity": out["perplexity"]}


@pytest.mark.parametrize("use_ema", [True, False])
def test_state_updates_inside_jit_train_step(use_ema):
    model = _TinyVQModel(use_ema)
    model.compile(
        optimizer="adam", jit_compile=keras.backend.backend() != "torch"
    )
    x = RNG.normal(size=(64, D)).astype("float32")
    counter = model.vq.counter
    seed_state = model.vq.seed_generator.state
    before = numpy(seed_state).copy()
    model.fit(x, epochs=1, batch_size=16, verbose=0)  # 4 steps
    assert float(numpy(counter)) == 4.0
    assert not np.array_equal(numpy(seed_state), before)
    state = [numpy(v).copy() for v in model.vq.non_trainable_weights]
    model.evaluate(x, batch_size=16, verbose=0)
    for old, var in zip(state, model.vq.non_trainable_weights):
        np.testing.assert_array_equal(numpy(var), old)


def test_config_round_trip_and_errors():
    vq = quantizer(use_ema=False, decay=0.9, dead_code_threshold=0.5)
    clone = assert_config_round_trip(vq)
    assert clone.use_ema is False and clone.embeddings.trainable
    with pytest.raises(ValueError, match="decay"):
        VectorQuantizer(4, 2, decay=1.0)
    with pytest.raises(ValueError, match="num_embeddings"):
        VectorQuantizer(0, 2)
