"""Bits-back ANS (BB-ANS) for a `VAE` with a Bernoulli likelihood."""

import hashlib
import math
import statistics

import numpy as np

from keras_vae.compression.compression_error import CompressionError

# Probabilities handed to the coder are multiples of 2**-24, constriction's
# default ANS precision.
PROBABILITY_BITS = 24
# The fixed pseudo-random words the stack starts from (see `seed_words`).
SEED_NUM_WORDS = 1024
_SQRT2 = math.sqrt(2.0)
_NORMAL = statistics.NormalDist()


def import_constriction():
    """The `constriction` module, or an ImportError naming the extra."""
    try:
        import constriction
    except ImportError:
        raise ImportError(
            "keras_vae.compression needs the `constriction` package. Install it "
            "with `pip install 'keras-vae[compression]'` (or `pip install constriction`)."
        ) from None
    return constriction


def seed_words(num_words=SEED_NUM_WORDS):
    """The fixed pseudo-random words every stream's stack starts from.

    Derived from sha256 in counter mode, so they never change with a NumPy
    or Python version. Their untouched bottom words are stripped from the
    stream and put back before decoding, so they cost nothing; only the bits
    the first images' latents take from them (the initial bits of bits-back
    coding) stay in the stream.
    """
    blocks = [
        hashlib.sha256(b"keras-vae bits-back seed %d" % i).digest()
        for i in range(-(-num_words // 8))
    ]
    words = np.frombuffer(b"".join(blocks), dtype="<u4")[:num_words].astype(np.uint32)
    words[-1] |= np.uint32(1 << 31)  # an ANS stream ends in a nonzero word
    return words


def check_gaussian_posterior(model):
    """Raises a `CompressionError` unless `model`'s posterior is the diagonal
    Gaussian whose buckets bits-back coding pops and pushes."""
    if getattr(model, "posterior", "gaussian") != "gaussian":
        raise CompressionError(
            "Bits-back coding needs a diagonal Gaussian posterior (posterior='gaussian'); "
            f"this {type(model).__name__}'s posterior is {model.posterior!r} (a flow, whose "
            "density the codec cannot discretise)."
        )


def quantize_probabilities(p, bits=PROBABILITY_BITS):
    """Rounds probabilities to multiples of `2**-bits`, kept in `(0, 1)`."""
    scale = float(1 << bits)
    return np.clip(np.round(np.asarray(p, np.float64) * scale), 1.0, scale - 1.0) / scale


def quantize_gaussian(mean, std):
    """Rounds a Gaussian's mean and standard deviation to multiples of
    `2**-20` in float64 (the standard deviation at least `2**-16`)."""
    grid = float(1 << 20)
    mean = np.round(np.asarray(mean, np.float64) * grid) / grid
    std = np.maximum(np.round(np.asarray(std, np.float64) * grid), 16.0) / grid
    return mean, std


class VAECodec:
    """Lossless bits-back ANS coder (Townsend et al. 2019) for a `VAE`.

    Codes binary images with a `VAE` whose likelihood is Bernoulli. For each
    image, the coder *decodes* (pops) a latent from the stack with the
    posterior `q(z|x)` ("getting bits back"), then encodes (pushes) the
    pixels with `p(x|z)` and the latent with the prior `p(z)`, so an image
    costs `-log p(x|z) - log p(z) + log q(z|x)` bits: its negative ELBO,
    up to the discretisation.

    Discretisation: each latent dimension is cut into `2**latent_bits`
    buckets of equal mass `2**-latent_bits` under the prior `N(0, 1)`; a
    latent is a bucket index, decoded at the bucket's centre (the prior's
    `(i + 0.5) / 2**latent_bits` quantile), and the prior codes it with
    exactly `latent_bits` bits. The posterior `N(mu, sigma^2)` gives each
    bucket the mass between its edges, as a cumulative distribution rounded
    to multiples of `2**-24`; pixel probabilities are rounded to the same
    grid. The rounding is done in NumPy / Python float64 before the coder
    sees any number, and the model runs on the same batches, padded to
    `batch_size` images, when compressing and decompressing, so both sides
    compute identical probabilities.

    Images are coded in steps of up to `batch_size` images, one model call
    per step: pops for the step, one decoder call, pushes. The first steps
    grow 1, 2, 3, ... images, so the first latents take few bits from the
    stack's fixed seed (`seed_words`); those bits are the codec's
    initial-bits overhead (`initial_bits` in the stream's header).

    `HierarchicalVAECodec` codes a `HierarchicalVAE`'s images with the
    same buckets, coder models and stream helpers.

    Args:
        model: a `keras_vae.VAE` (or `BetaVAE`) with `likelihood="bernoulli"`.
        latent_bits: int. `log2` of the number of buckets per latent
            dimension. Defaults to `12`.
        batch_size: int. Images per model call. Defaults to `32`.

    Example:

    >>> import numpy as np
    >>> import keras_vae as kv
    >>> model = kv.VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp",
    ...                hidden_dims=(8,))
    >>> codec = VAECodec(model, batch_size=2)
    >>> bits = np.random.default_rng(0).integers(0, 2, (3, 16)).astype("uint8")
    >>> words, info = codec.encode(bits)
    >>> bool((codec.decode(words, 3, info) == bits).all())
    True
    """

    name = "bb-ans-vae-bernoulli"
    setting_names = ("latent_bits", "batch_size")
    # Settings that streams written before them lack, and the value those
    # streams were coded with.
    stream_defaults = {}

    def __init__(self, model, latent_bits=12, batch_size=32):
        from keras_vae.models.vae import VAE

        if not isinstance(model, VAE):
            raise CompressionError(f"VAECodec needs a VAE, got a {type(model).__name__}.")
        if model.likelihood != "bernoulli":
            raise CompressionError(
                "Lossless compression needs a Bernoulli likelihood (binary images); "
                f"this VAE's likelihood is {model.likelihood!r}."
            )
        check_gaussian_posterior(model)
        self._setup(model, latent_bits, batch_size)
        self.latent_dim = model.latent_dim

    def _setup(self, model, latent_bits, batch_size, num_seed_words=SEED_NUM_WORDS):
        """Checks the settings and builds the buckets and the coder's models
        (shared with `HierarchicalVAECodec`)."""
        latent_bits, batch_size = int(latent_bits), int(batch_size)
        if not 1 <= latent_bits <= 16:
            raise ValueError(f"`latent_bits` must be in [1, 16], got {latent_bits}.")
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
        self.model = model
        self.latent_bits = latent_bits
        self.batch_size = batch_size
        self.num_seed_words = int(num_seed_words)
        self.num_pixels = int(np.prod(model.input_shape_))
        num_buckets = 1 << latent_bits
        inner = [_NORMAL.inv_cdf(i / num_buckets) for i in range(1, num_buckets)]
        self._edges = [-math.inf, *inner, math.inf]
        self.centres = np.array(
            [_NORMAL.inv_cdf((i + 0.5) / num_buckets) for i in range(num_buckets)], np.float32
        )
        constriction = import_constriction()
        models = constriction.stream.model
        self._posterior_family = models.CustomModel(
            self._posterior_cdf, self._posterior_ppf, 0, num_buckets - 1
        )
        self._prior = models.Uniform(num_buckets)
        self._pixels = models.Bernoulli(perfect=False)
        self._coder = constriction.stream.stack.AnsCoder

    def settings(self):
        """The settings a decoder must use (stored in the stream's header)."""
        return {"latent_bits": self.latent_bits, "batch_size": self.batch_size}

    def prepare(self, images):
        """Checks binary images `(n, *input_shape)`; returns 0/1 bytes `(n, num_pixels)`."""
        images = np.asarray(images)
        shape = self.model.input_shape_
        if images.ndim != len(shape) + 1 or tuple(images.shape[1:]) != tuple(shape):
            raise ValueError(
                f"Expected images of shape (n, {', '.join(map(str, shape))}), got {images.shape}."
            )
        bits = (images == 1).astype(np.uint8)
        if not np.array_equal(bits, images):
            raise ValueError(
                "Lossless compression codes binary images: every pixel must be 0 or 1, "
                "got other values. Binarize first, e.g. (x > 0.5)."
            )
        return bits.reshape(len(bits), self.num_pixels)

    def finish(self, bits, dtype):
        """The decoded images, in the shape and dtype given to `compress`."""
        return bits.reshape(len(bits), *self.model.input_shape_).astype(dtype)

    # ------------------------------------------------------------------
    # Discretised densities (float64, rounded before the coder sees them).

    def _posterior_cdf(self, x, mu, sigma):
        # constriction asks for the CDF at x = i - 0.5: the posterior mass of
        # the buckets below bucket i.
        edge = self._edges[int(x + 0.5)]
        scale = float(1 << PROBABILITY_BITS)
        return round(0.5 * math.erfc((mu - edge) / (sigma * _SQRT2)) * scale) / scale

    def _posterior_ppf(self, q, mu, sigma):
        # Only a first guess: constriction inverts `_posterior_cdf` exactly.
        q = min(max(q, 1e-12), 1.0 - 1e-12)
        z = mu + sigma * _NORMAL.inv_cdf(q)
        u = 0.5 * math.erfc(-z / _SQRT2)
        return float(min(len(self._edges) - 2, int(u * (len(self._edges) - 1))))

    def _posterior(self, x):
        """Quantised `(mu, sigma)` of `q(z|x)`, float64 `(batch, latent_dim)`."""
        z_mean, z_log_var = self.model.encoder.predict_on_batch(x)
        return quantize_gaussian(z_mean, np.exp(0.5 * np.asarray(z_log_var, np.float64)))

    def _pixel_probabilities(self, z):
        """Quantised Bernoulli probabilities of `p(x|z)`, `(batch, num_pixels)`."""
        logits = np.asarray(self.model.decoder.predict_on_batch(z), np.float64)
        logits = logits.reshape(len(z), self.num_pixels)
        return quantize_probabilities(1.0 / (1.0 + np.exp(-logits)))

    def _padded_size(self, size):
        """Rows of the model call of a step of `size` images."""
        return self.batch_size

    def _padded(self, rows, shape):
        batch = np.zeros((self._padded_size(len(rows)), *shape), np.float32)
        batch[: len(rows)] = rows.reshape(len(rows), *shape)
        return batch

    def steps(self, count):
        """`(start, size)` of each step: sizes 1, 2, 3, ... then `batch_size`."""
        steps, start, size = [], 0, 1
        while start < count:
            size = min(size, self.batch_size, count - start)
            steps.append((start, size))
            start += size
            size += 1
        return steps

    # ------------------------------------------------------------------
    # Coding.

    def encode(self, bits, progress=None):
        """Codes images given as 0/1 bytes of shape `(n, num_pixels)`.

        Returns:
            `(words, info)`: the stream as uint32 words (the seed's untouched
            bottom words removed) and a dict with `seed_words_stripped`
            and `initial_bits`.
        """
        bits = np.asarray(bits, np.uint8).reshape(len(bits), self.num_pixels)
        shape = self.model.input_shape_
        coder = self._coder(seed_words(self.num_seed_words))
        steps = self.steps(len(bits))
        for start, size in steps:
            x = bits[start : start + size]
            mu, sigma = self._posterior(self._padded(x, shape))
            z = coder.decode(self._posterior_family, mu[:size].ravel(), sigma[:size].ravel())
            if coder.num_words() < 4:
                raise CompressionError("The bits-back seed is exhausted; use a smaller batch.")
            centres = self.centres[z].reshape(size, self.latent_dim)
            p = self._pixel_probabilities(self._padded(centres, (self.latent_dim,)))
            coder.encode_reverse(x.ravel().astype(np.int32), self._pixels, p[:size].ravel())
            coder.encode_reverse(z, self._prior)
            if progress is not None:
                progress(start + size, len(bits))
        return self._finish_stream(coder)

    def _finish_stream(self, coder):
        """`(words, info)` of a finished coder: its words less the seed's
        untouched bottom ones, and `seed_words_stripped`, `initial_bits`."""
        seed = seed_words(self.num_seed_words)
        words = coder.get_compressed()
        same = words[: len(seed)] == seed[: len(words)]
        stripped = int(np.argmin(same)) if not same.all() else len(same)
        stripped = min(stripped, len(words) - 1)
        info = {"seed_words_stripped": stripped, "initial_bits": 32 * (len(seed) - stripped)}
        return words[stripped:], info

    def _start_stream(self, words, info):
        """A coder on `words` with the seed's stripped bottom words put back."""
        seed = seed_words(self.num_seed_words)
        stripped = int(info["seed_words_stripped"])
        if not 0 <= stripped <= len(seed):
            raise CompressionError(f"Bad header: {stripped} stripped seed words.")
        try:
            return self._coder(np.concatenate([seed[:stripped], words]).astype(np.uint32))
        except Exception as error:  # constriction refuses an invalid stream
            raise CompressionError(f"The stream is invalid: {error}") from None

    def _check_stream_end(self, coder):
        """Raises unless a decoding `coder` is back at the seed."""
        if not np.array_equal(coder.get_compressed(), seed_words(self.num_seed_words)):
            raise CompressionError(
                "The decoded stream does not end in the codec's seed: the stream is "
                "corrupted, or the model computed other probabilities than when it "
                "was compressed."
            )

    def decode(self, words, count, info, progress=None):
        """Inverse of `encode` (`info`: its dict, as in the stream's header):
        0/1 bytes of shape `(count, num_pixels)`."""
        coder = self._start_stream(words, info)
        shape = self.model.input_shape_
        bits = np.zeros((count, self.num_pixels), np.uint8)
        steps = self.steps(count)
        for start, size in reversed(steps):
            z = coder.decode(self._prior, size * self.latent_dim)
            centres = self.centres[z].reshape(size, self.latent_dim)
            p = self._pixel_probabilities(self._padded(centres, (self.latent_dim,)))
            x = coder.decode(self._pixels, p[:size].ravel()).astype(np.uint8)
            bits[start : start + size] = x.reshape(size, self.num_pixels)
            mu, sigma = self._posterior(self._padded(bits[start : start + size], shape))
            coder.encode_reverse(z, self._posterior_family, mu[:size].ravel(), sigma[:size].ravel())
            if progress is not None:
                progress(count - start, count)
        self._check_stream_end(coder)
        return bits
