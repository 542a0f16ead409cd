"""Mixed precision: the VAE trains under `mixed_bfloat16` and `mixed_float16`
(with the loss scaling Keras adds in `compile`) on every backend, and its
losses, KL and log-likelihoods stay float32."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_vae.models import VAE

BACKEND = keras.backend.backend()


def bars(num=128, size=8, seed=0):
    """Binary images of one lit row or column: structure a VAE learns fast."""
    rng = np.random.default_rng(seed)
    x = np.zeros((num, size, size, 1), "float32")
    index = rng.integers(0, size, num)
    rows = rng.random(num) < 0.5
    x[rows, index[rows], :, 0] = 1.0
    x[~rows, :, index[~rows], 0] = 1.0
    return x


def cases():
    cases = [
        ("mixed_bfloat16", "conv", "bernoulli"),
        ("mixed_float16", "conv", "gaussian"),
    ]
    if BACKEND == "torch":
        # torch's CPU float16 convolution cannot backpropagate through the
        # 1-channel output convolution in the channels-last layout Keras
        # uses ("slow_conv2d: grad_weight must be contiguous"); CUDA can.
        # On CPU, check float16 with the dense architecture.
        cases[1] = ("mixed_float16", "mlp", "gaussian")
    return cases


def dtype_of(tensor):
    return keras.backend.standardize_dtype(tensor.dtype)


@pytest.mark.parametrize("policy,architecture,likelihood", cases())
def test_vae_trains_under_mixed_precision(policy, architecture, likelihood):
    x = bars()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = VAE(
            input_shape=(8, 8, 1),
            latent_dim=4,
            architecture=architecture,
            hidden_dims=(16, 32),
            likelihood=likelihood,
            seed=0,
        )
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        half = policy.split("_")[1]
        assert model.decoder.compute_dtype == half
        assert {w.dtype for w in model.trainable_weights} == {"float32"}
        is_scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert is_scaled == (policy == "mixed_float16")

        # Losses, KL and likelihoods in float32; the posterior too.
        terms = model.compute_loss_terms(ops.convert_to_tensor(x[:32]))
        assert {k: dtype_of(v) for k, v in terms.items()} == {
            "loss": "float32",
            "reconstruction_loss": "float32",
            "kl_loss": "float32",
        }

        history = model.fit(x, epochs=4, batch_size=32, verbose=0)
        losses = history.history["loss"]
        assert np.all(np.isfinite(losses)), losses
        assert losses[-1] < losses[0] - 1.0, losses  # it learns
        if is_scaled:
            scale = float(ops.convert_to_numpy(model.optimizer.dynamic_scale))
            assert np.isfinite(scale) and scale >= 1.0

        elbo = model.elbo(x[:4], seed=0)
        for values in (
            *model.encode(x[:4]),
            model.decode(np.zeros((2, 4), "float32")),
            elbo,
        ):
            assert values.dtype == np.float32 and np.all(np.isfinite(values))
        log_px = model.log_likelihood(x[:4], num_samples=8)
        assert np.all(np.isfinite(log_px))
        assert np.all(log_px > elbo - 5.0)  # IWAE >= ELBO, up to noise
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_vq_vae_and_text_vae_train_under_mixed_bfloat16():
    """The quantizer keeps its distances and codebook in float32, and the
    text VAE's per-token log-probabilities are float32."""
    from keras_vae.models import VQVAE
    from tests.models.text_vae_test import CORPUS, tiny

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        vq = VQVAE(
            input_shape=(8, 8, 1),
            num_embeddings=8,
            embedding_dim=4,
            hidden_dims=(8, 16),
            residual_hidden_dim=8,
            num_residual_blocks=1,
            seed=0,
        )
        vq.compile(optimizer=keras.optimizers.Adam(3e-3))
        history = vq.fit(bars(64), epochs=2, batch_size=32, verbose=0)
        assert all(np.all(np.isfinite(v)) for v in history.history.values()), history.history
        terms = vq.compute_loss_terms(ops.convert_to_tensor(bars(8)))
        assert {dtype_of(v) for v in terms.values()} == {"float32"}
        assert "bfloat16" not in {w.dtype for w in vq.weights}  # codebook, EMA state
        assert vq.encode(bars(4)).shape == (4, 2, 2)

        for tie_embeddings in (False, True):
            text = tiny(latent_dim=2, tie_embeddings=tie_embeddings)
            assert text.text_decoder.compute_dtype == "bfloat16"
            text.compile(optimizer=keras.optimizers.Adam(1e-2))
            history = text.fit(CORPUS, epochs=2, batch_size=8, verbose=0)
            assert np.all(np.isfinite(history.history["loss"])), history.history
            terms = text.compute_loss_terms(ops.convert_to_tensor(text.tokenize(CORPUS[:4])))
            assert {dtype_of(v) for v in terms.values()} == {"float32"}
            assert np.all(np.isfinite(text.log_likelihood(CORPUS[:2], num_samples=4)))
            assert len(text.reconstruct(CORPUS[:2])) == 2
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
