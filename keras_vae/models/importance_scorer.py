import math

import keras
import numpy as np
from keras import ops

from keras_vae import losses, training

# The most floats of standard-normal noise drawn for one batch (256 MiB):
# batches are made smaller where `num_samples * noise_dim` per example would
# exceed it (a HierarchicalVAE's 2,352 latents at k = 1000 need 9.4 MB per
# example, 4.7 GB for a batch of 500).
MAX_NOISE_FLOATS = 1 << 26


class ImportanceScorer(keras.Model):
    """The importance-sampled `log p(x)` of a batch as one compiled function.

    `log_likelihood` of `VAE` and `HierarchicalVAE` runs here: `call` takes
    `[x, noise, mask]`, with the standard-normal `noise` of every draw of
    the batch in chunks, shape `(num_chunks, chunk_size, batch, noise_dim)`,
    encodes `x` once and loops over the chunks inside the graph
    (`losses.chunked_importance_sampled_log_likelihood`: a running float32
    log-sum-exp in one `keras.ops.fori_loop`). `predict_on_batch` compiles
    it (jit on JAX, `tf.function` on TensorFlow; PyTorch runs it eagerly
    without autograd), so a batch is one call with no Python round trip
    per chunk. On PyTorch an evaluation of many draws (200,000 or more:
    `keras_vae.training.compiled_decoder.COMPILE_MIN_DRAWS`) decodes through
    `torch.compile` instead (`keras_vae.training.CompiledDecoder`, about
    10 s of compiling, then `vae_binarized_mnist` scores 1.5x faster); the
    environment variable `KERAS_VAE_TORCH_COMPILE=0` turns that off, `=1`
    compiles at any size. Models without a separate decoder
    (`HierarchicalVAE`) run eagerly on PyTorch.

    The model supplies `importance_log_weight_fn(x, decoder)`: the per-batch
    work (the encoder), returning a function `noise -> (chunk_size, batch)`
    log importance weights for noise of shape `(chunk_size, batch,
    noise_dim)`. Kept out of Keras' tracking: the model tracks its scorers,
    the reverse would cycle.

    Args:
        model: the generative model scored.
        decoder: optional `keras.Model` that replaces the model's decoder
            (e.g. a bfloat16 copy). Defaults to `None`.

    Example:

    >>> import numpy as np
    >>> from keras_vae.models import VAE
    >>> vae = VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,))
    >>> scorer = ImportanceScorer(vae)
    >>> x = np.zeros((3, 4, 4, 1), "float32")
    >>> scorer.log_likelihood(x, num_samples=10, batch_size=2, seed=0, max_decode=8).shape
    (3,)
    """

    def __init__(self, model, decoder=None):
        super().__init__(name=f"{model.name}_importance_scorer")
        object.__setattr__(self, "scored", model)
        object.__setattr__(self, "scored_decoder", decoder)
        object.__setattr__(self, "decoder_in_use", decoder)
        # No weights of its own. Unbuilt, Keras' JAX `predict_on_batch`
        # would first run `call` eagerly on the whole batch to build it
        # (about as long as the compiled call itself, or longer).
        self.built = True

    def make_predict_function(self, force=False):
        with training.keras_jit_options():  # JAX on the CPU: XLA's own convolutions
            return super().make_predict_function(force)

    def call(self, inputs):
        x, noise, mask = inputs
        log_weights = self.scored.importance_log_weight_fn(x, self.decoder_in_use)
        return losses.chunked_importance_sampled_log_likelihood(
            lambda i: log_weights(ops.take(noise, i, axis=0)), ops.shape(noise)[0], mask
        )

    def log_likelihood(self, x, num_samples, batch_size, seed, max_decode, compiled=True):
        """Per-example estimates (NumPy) of checked inputs `x`.

        Batches of `batch_size` examples (fewer where their noise would
        exceed `MAX_NOISE_FLOATS`), each with `num_samples` draws of
        `keras.random.normal` from `seed` (one call per batch), split into
        the fewest chunks of at most `max_decode` decoded images (at least
        one draw per chunk), the last chunk padded and masked. `compiled`
        runs `predict_on_batch` (on torch, with the decoder compiled when
        `keras_vae.training.compiles_decoders` says so); `False` calls the
        scorer eagerly.
        """
        decoder = self.scored_decoder
        if compiled and training.compiles_decoders(len(x) * num_samples):
            decoder = self._compiled_decoder()
        object.__setattr__(self, "decoder_in_use", decoder)
        try:
            return self._log_likelihood(x, num_samples, batch_size, seed, max_decode, compiled)
        finally:
            object.__setattr__(self, "decoder_in_use", self.scored_decoder)

    def _compiled_decoder(self):
        """The decoder scored, under `training.CompiledDecoder` (made once);
        `None` (the model's own path) when the model has no decoder."""
        decoder = self.scored_decoder or getattr(self.scored, "decoder", None)
        if decoder is None:
            return None
        compiled = self.__dict__.get("compiled_decoder")
        if compiled is None:
            compiled = training.CompiledDecoder(decoder)
            object.__setattr__(self, "compiled_decoder", compiled)
        return compiled

    def _log_likelihood(self, x, num_samples, batch_size, seed, max_decode, compiled):
        generator = keras.random.SeedGenerator(seed)
        noise_dim = self.scored.latent_dim
        batch_size = max(1, min(batch_size, MAX_NOISE_FLOATS // (num_samples * noise_dim)))
        results = []
        for start in range(0, len(x), batch_size):
            xb = np.asarray(x[start : start + batch_size])
            batch = len(xb)
            num_chunks = math.ceil(num_samples / max(1, max_decode // batch))
            chunk_size = math.ceil(num_samples / num_chunks)
            noise = keras.random.normal((num_chunks, chunk_size, batch, noise_dim), seed=generator)
            mask = np.zeros((num_chunks * chunk_size,), "float32")
            mask[num_samples:] = -np.inf
            inputs = [xb, noise, mask.reshape(num_chunks, chunk_size)]
            if compiled:
                results.append(np.asarray(self.predict_on_batch(inputs)))
            else:
                inputs[0] = ops.convert_to_tensor(xb)
                with training.inference():
                    results.append(ops.convert_to_numpy(self(inputs)))
        return np.concatenate(results)
