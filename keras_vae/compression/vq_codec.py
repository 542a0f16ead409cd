"""Lossy compression with a `VQVAE`: code indices coded with its prior."""

import numpy as np

from keras_vae.compression.compression_error import CompressionError
from keras_vae.compression.vae_codec import import_constriction, quantize_probabilities


class VQCodec:
    """Lossy codec: a `VQVAE`'s code indices, entropy-coded with its prior.

    An image becomes its grid of code indices (`model.encode`), coded with
    ANS under the model's autoregressive `TransformerPrior`, so it costs
    `-log2 p(codes)` bits under the prior (plus a few bits of ANS
    precision); decompression decodes the codes one grid position at a time
    and returns `model.decode_indices(codes)` clipped to `[0, 1]`: the
    VQ-VAE's reconstruction, not the original image.

    The prior's probabilities are computed the same way on both sides:
    position `t` of every image in a batch of `batch_size` (padded) from the
    codes before `t` (later positions zero), softmax in float64, rounded to
    multiples of `2**-24`. The codes' sha256 is checked after decoding.

    Args:
        model: a `keras_vae.VQVAE` with a prior (`set_prior` / `fit_prior`),
            e.g. the `vq_vae_mnist` preset.
        batch_size: int. Images per prior call. Defaults to `256`.

    Example:

    >>> import numpy as np
    >>> import keras_vae as kv
    >>> model = kv.VQVAE(input_shape=(8, 8, 1), num_embeddings=8, embedding_dim=4,
    ...                  hidden_dims=(8,), num_residual_blocks=0)
    >>> model.set_prior(kv.TransformerPrior(grid_shape=model.grid_shape,
    ...                  num_embeddings=8, embed_dim=8, num_heads=1, num_layers=1))
    >>> codec = VQCodec(model, batch_size=2)
    >>> images = np.random.default_rng(0).random((3, 8, 8, 1), "float32")
    >>> codes = codec.prepare(images)
    >>> words, info = codec.encode(codes)
    >>> bool((codec.decode(words, 3, info) == codes).all())
    True
    """

    name = "vq-transformer-prior"
    setting_names = ("batch_size",)
    stream_defaults = {}

    def __init__(self, model, batch_size=256):
        from keras_vae.models.vq_vae import VQVAE

        if not isinstance(model, VQVAE):
            raise CompressionError(f"VQCodec needs a VQVAE, got a {type(model).__name__}.")
        if model.prior is None:
            raise CompressionError(
                "The VQVAE has no prior to code its indices with; attach one with "
                "set_prior or fit_prior (the vq_vae_mnist preset has one)."
            )
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
        self.model = model
        self.batch_size = batch_size
        self.length = int(np.prod(model.grid_shape))
        constriction = import_constriction()
        self._codes = constriction.stream.model.Categorical(perfect=False)
        self._coder = constriction.stream.stack.AnsCoder

    def settings(self):
        return {"batch_size": self.batch_size}

    def prepare(self, images):
        """The code indices `(n, *grid_shape)` (int32) of images in `[0, 1]`."""
        images = np.asarray(images)
        if images.dtype == np.uint8:
            raise ValueError("Expected images in [0, 1] as floats; divide uint8 images by 255.")
        return self.model.encode(images.astype("float32"), batch_size=self.batch_size)

    def finish(self, codes, dtype=None):
        """The reconstructions of the codes, float32 in `[0, 1]`."""
        images = self.model.decode_indices(codes, batch_size=self.batch_size)
        return np.clip(images, 0.0, 1.0)

    def _probabilities(self, partial, t):
        """Quantised `p(c_t | c_<t)` rows `(len(partial), num_embeddings)`."""
        batch = np.zeros((self.batch_size, self.length), np.int32)
        batch[: len(partial), :t] = partial[:, :t]
        logits = self.model.prior.predict_on_batch(
            batch.reshape(self.batch_size, *self.model.grid_shape)
        )["logits"]
        logits = np.asarray(logits, np.float64).reshape(self.batch_size, self.length, -1)
        logits = logits[: len(partial), t]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return quantize_probabilities(p / p.sum(axis=1, keepdims=True))

    def _chunks(self, count):
        return [(s, min(count, s + self.batch_size)) for s in range(0, count, self.batch_size)]

    def encode(self, codes, progress=None):
        """Codes `(n, *grid_shape)` indices; returns `(words, info)`."""
        codes = np.asarray(codes, np.int32).reshape(len(codes), self.length)
        coder = self._coder()
        done = 0
        # The stack decodes the last chunk pushed first: push them in reverse.
        for start, stop in reversed(self._chunks(len(codes))):
            chunk = codes[start:stop]
            probabilities = np.stack(
                [self._probabilities(chunk, t) for t in range(self.length)]
            )
            coder.encode_reverse(
                np.ascontiguousarray(chunk.T).ravel(),
                self._codes,
                probabilities.reshape(-1, probabilities.shape[-1]),
            )
            done += stop - start
            if progress is not None:
                progress(done, len(codes))
        return coder.get_compressed(), {}

    def decode(self, words, count, info, progress=None):
        """Inverse of `encode`: int32 indices `(count, *grid_shape)`."""
        try:
            coder = self._coder(np.asarray(words, np.uint32))
        except Exception as error:
            raise CompressionError(f"The stream is invalid: {error}") from None
        codes = np.zeros((count, self.length), np.int32)
        for start, stop in self._chunks(count):
            chunk = codes[start:stop]
            for t in range(self.length):
                chunk[:, t] = coder.decode(self._codes, self._probabilities(chunk, t))
            if progress is not None:
                progress(stop, count)
        if not coder.is_empty():
            raise CompressionError("The stream has bits left after its last image: corrupted.")
        return codes.reshape(count, *self.model.grid_shape)
