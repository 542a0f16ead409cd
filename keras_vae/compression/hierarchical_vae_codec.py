"""Bits-back ANS over the joint latents of a `HierarchicalVAE`."""

import math

import keras
import numpy as np

from keras_vae.compression.compression_error import CompressionError
from keras_vae.compression.vae_codec import (
    SEED_NUM_WORDS,
    VAECodec,
    check_gaussian_posterior,
    quantize_gaussian,
    quantize_probabilities,
    seed_words,
)

# `encode` sets `ramp` to this many times the first image's popped bits over
# its net bits.
RAMP_MARGIN = 1.5
MAX_RAMP = 1 << 20
STEP_PADDINGS = ("power_of_two", "batch_size")


class HierarchicalVAECodec(VAECodec):
    """Lossless bits-back ANS coder for a `HierarchicalVAE` (binary images).

    Ordering: plain BB-ANS (Townsend et al. 2019) over the joint latents,
    not Bit-Swap. Bit-Swap (Kingma et al. 2019) interleaves pops and pushes
    (pop `z_1`, push `x`, pop `z_2`, push `z_1`, ...), which needs a Markov
    chain: `p(x | z_1)` and a posterior of `z_{l+1}` given `z_l` only. A
    `HierarchicalVAE` is top-down: its posterior `q(z_l | x, z_<l)`
    conditions on the image and every group above, and `p(x | z)` on every
    group, so no push can happen before all groups are popped. For each
    image the coder pops `z_1` from `q(z_1 | x)`, `z_2` from
    `q(z_2 | x, z_1)`, ..., `z_L`, then pushes the pixels with `p(x | z)`
    and the groups with their priors `p(z_l | z_<l)` (`z_L` first, so the
    decoder pops `z_1` first). An image costs its negative ELBO (one
    posterior sample) up to the discretisation; the initial bits (what the
    first image's pops take from the stack's fixed seed) are those of
    every group, `initial_bits` in the stream's header.

    Discretisation: each latent coordinate of group `l` is cut into
    `2**latent_bits` buckets of equal mass under its own prior
    `p(z_l | z_<l) = N(mu_p, sigma_p^2)`: the edges are
    `mu_p + sigma_p * Phi^-1(i / 2**latent_bits)`, computed per coordinate
    from the prior given the groups above (which the decoder has decoded
    before it needs group `l`'s buckets). A latent is a bucket index,
    decoded at `mu_p + sigma_p * Phi^-1((i + 0.5) / 2**latent_bits)`; the
    prior codes it with exactly `latent_bits` bits; the posterior gives a
    bucket the mass of `N((mu_q - mu_p) / sigma_p, (sigma_q / sigma_p)^2)`
    between the standard normal's quantiles, `VAECodec`'s posterior model.
    Means and standard deviations are rounded to multiples of `2**-20` and
    probabilities to multiples of `2**-24` in NumPy float64 before the
    coder sees them, as in `VAECodec`.

    Batching: a step codes up to `batch_size` images with `2 L + 1`
    compiled passes of the model (each group's prior given the groups
    above, its posterior given the image and the groups above, the pixels
    given every group), padded to the next power of two images (at most
    `batch_size`; `step_padding="batch_size"` pads every step to
    `batch_size`, as streams written before this setting were) when
    compressing and decompressing alike, so both sides compute the same
    floats (each batch size has its own compiled passes); a group's
    latents are coded in one vectorised call. A step pops all its images'
    latents before it pushes anything, and with thousands of latents (2352
    for the `hvae_binarized_mnist` recipe) an image pops far more bits
    (about `latent_bits` per inactive latent) than it adds to the stack
    (its negative ELBO). So steps grow by one image every `ramp`
    images: the stack then holds enough earlier images' data for every
    step, and the initial bits stay about one image's pops instead of
    `batch_size` images'. `ramp` is measured on the first image (1.5 times
    its popped bits over its net bits) and stored in the stream's header.

    A PixelCNN head (`num_autoregressive_layers > 0`) codes the pixels in
    raster order with `p(x_i | x_<i, z)`: decompressing pops one position
    of every image of the step at a time and runs the head again on the
    pixels decoded so far (on the `autoregressive_reach + 1` rows the
    position's logit sees), `height * width` compiled passes of the head
    per step, and compressing runs the same loop on the known image (so
    both sides compute the same floats). That is much slower than one pass
    per step; the cost per image is the model's lower negative ELBO.

    Args:
        model: a `keras_vae.HierarchicalVAE`.
        latent_bits: int. `log2` of the number of buckets per latent
            coordinate. Defaults to `12`.
        batch_size: int. Largest number of images per model call.
            Defaults to `32`.
        ramp: int or `None`. Images coded per extra image in a step;
            `None` (compressing) measures it on the first image. Defaults
            to `None`.
        step_padding: `"power_of_two"` or `"batch_size"`. The rows of a
            step's model calls: its images padded to the next power of
            two (at most `batch_size`: a handful of compiled shapes, and
            small steps cost little), or always `batch_size` (streams
            written before this setting; their headers lack it).
            Defaults to `"power_of_two"`.

    Example:

    >>> import numpy as np
    >>> import keras_vae as kv
    >>> model = kv.HierarchicalVAE(input_shape=(4, 4, 1), latent_channels=(1, 1),
    ...                            strides=(4, 2), hidden_channels=4, seed=0)
    >>> codec = HierarchicalVAECodec(model, batch_size=2)
    >>> bits = np.random.default_rng(0).integers(0, 2, (3, 16)).astype("uint8")
    >>> words, info = codec.encode(bits)
    >>> bool((codec.decode(words, 3, info) == bits).all())
    True
    """

    name = "bb-ans-hvae-bernoulli"
    setting_names = ("latent_bits", "batch_size", "ramp", "step_padding")
    stream_defaults = {"step_padding": "batch_size"}

    def __init__(
        self, model, latent_bits=12, batch_size=32, ramp=None, step_padding="power_of_two"
    ):
        from keras_vae.models.hierarchical_vae import HierarchicalVAE

        if not isinstance(model, HierarchicalVAE):
            raise CompressionError(
                f"HierarchicalVAECodec needs a HierarchicalVAE, got a {type(model).__name__}."
            )
        check_gaussian_posterior(model)
        self.latent_dim = model.latent_dim
        self.group_shapes = [tuple(shape) for shape in model.latent_shapes()]
        self.group_sizes = [math.prod(shape) for shape in self.group_shapes]
        # The first image pops every group from the seed: room for twice the
        # prior's bits of all its latents.
        extra = -(-2 * self.latent_dim * int(latent_bits) // 32)
        self._setup(model, latent_bits, batch_size, num_seed_words=SEED_NUM_WORDS + extra)
        self._centres64 = self.centres.astype(np.float64)
        if ramp is not None and not 1 <= int(ramp) <= MAX_RAMP:
            raise ValueError(f"`ramp` must be in [1, {MAX_RAMP}], got {ramp}.")
        self.ramp = None if ramp is None else int(ramp)
        if step_padding not in STEP_PADDINGS:
            raise ValueError(
                f"`step_padding` must be one of {STEP_PADDINGS}, got {step_padding!r}."
            )
        self.step_padding = step_padding

    # ------------------------------------------------------------------
    # Model passes (padded batches, `_padded_size`), float64 results.

    def settings(self):
        """The settings a decoder must use (stored in the stream's header)."""
        return {**super().settings(), "ramp": self.ramp, "step_padding": self.step_padding}

    def _padded_size(self, size):
        if self.step_padding == "batch_size":
            return self.batch_size
        return min(self.batch_size, 1 << (size - 1).bit_length())

    def _run(self, mode, group, inputs):
        """The model's pass `mode` (see `_GroupPass`) on `inputs`."""
        return _group_pass(self.model, group, mode, len(inputs[0])).predict_on_batch(inputs)

    def _step_size(self, start, count):
        if start == 0:
            return min(1, count)
        return min(self.batch_size, count - start, 1 + start // self.ramp)

    def steps(self, count):
        """`(start, size)` of each step: one more image per step every
        `ramp` images, up to `batch_size`."""
        if count and self.ramp is None:
            raise CompressionError("The stream's header lacks the codec's `ramp`.")
        steps, start = [], 0
        while start < count:
            steps.append((start, self._step_size(start, count)))
            start += steps[-1][1]
        return steps

    def _prior_params(self, group, x, above):
        """Quantised `(mu_p, sigma_p)` of group `group` given the groups above."""
        mean, log_var = self._run("prior", group, [x, *above])
        return quantize_gaussian(mean, np.exp(0.5 * np.asarray(log_var, np.float64)))

    def _standard_posterior(self, group, x, above, prior):
        """Quantised posterior of group `group` in units of its prior:
        `((mu_q - mu_p) / sigma_p, sigma_q / sigma_p)`, flattened per image."""
        mean, log_var = self._run("posterior", group, [x, *above])
        p_mean, p_std = prior
        std = np.exp(0.5 * np.asarray(log_var, np.float64))
        mu, sigma = quantize_gaussian((np.asarray(mean, np.float64) - p_mean) / p_std, std / p_std)
        return mu.reshape(len(x), -1), sigma.reshape(len(x), -1)

    def _centres(self, prior, buckets, size):
        """The latents (float32, padded) at the centres of `buckets` of the
        first `size` images; the padding rows take the prior's mean."""
        p_mean, p_std = prior
        z = p_mean.copy()
        shape = z.shape[1:]
        z[:size] += p_std[:size] * self._centres64[buckets].reshape(size, *shape)
        return z.astype(np.float32)

    def _pixel_probabilities(self, x, latents):
        logits = self._run("likelihood", self.model.num_groups, [x, *latents])
        logits = np.asarray(logits, np.float64).reshape(len(x), self.num_pixels)
        return quantize_probabilities(1.0 / (1.0 + np.exp(-logits)))

    def _autoregressive_pixels(self, size, latents, visit):
        """Runs a PixelCNN head position by position (raster order) over a
        padded batch whose pixels start at 0. At each position,
        `visit(position, p)` gets the quantised probabilities `(size,
        channels)` of its pixels given the pixels before it and returns
        their 0/1 values, which fill the batch before the next position.
        Compressing and decompressing run this same loop, so both sides
        compute the same floats (a causal convolution's output does not
        depend on later pixels in exact arithmetic, but might in the last
        bit with the real image there instead of zeros).

        Each pass runs the head on the band of `autoregressive_reach + 1`
        rows ending at the pixel's row, not on the whole image: 28 / 5
        times less work on MNIST with a 3-layer head. (The model's sampling
        loop narrows it further, to each pixel's window; the codec keeps
        the band, whose floats its streams were written with.)"""
        height, width, channels = self.model.input_shape_
        reach = self.model.autoregressive_reach
        empty = np.zeros((len(latents[0]), height, width, channels), np.float32)
        h, base = self._run("likelihood", self.model.num_groups, [empty, *latents])
        # Zero rows on top, as in `HierarchicalVAE._generate`.
        top = [(0, 0), (reach, 0), (0, 0), (0, 0)]
        h = np.pad(np.asarray(h, np.float32), top)
        base = np.asarray(base, np.float32)
        pixels = np.pad(empty, top)
        for position in range(height * width):
            row, column = divmod(position, width)
            band = slice(row, row + reach + 1)  # image rows `row - reach .. row`
            inside = (np.arange(row - reach, row + 1) >= 0).astype(np.float32)
            row_mask = np.broadcast_to(inside[None, :, None, None], (len(h), reach + 1, 1, 1))
            logits = self._run(
                "head", self.model.num_groups, [pixels[:, band], h[:, band], base[:, row], row_mask]
            )
            logits = np.asarray(logits, np.float64)[:size, column, :]
            p = quantize_probabilities(1.0 / (1.0 + np.exp(-logits)))
            pixels[:size, row + reach, column, :] = visit(position, p)

    def _push_pixels(self, coder, x, xb, latents, size):
        """Pushes the pixels of `x` (0/1 bytes `(size, num_pixels)`) with
        `p(x | z)`; with a PixelCNN head in position-major order, so that
        `_pop_pixels` pops position 0 of every image first."""
        if not self.model.autoregressive_layers:
            p = self._pixel_probabilities(xb, latents)
            coder.encode_reverse(x.ravel().astype(np.int32), self._pixels, p[:size].ravel())
            return
        values = x.reshape(size, -1, self.model.input_shape_[-1])
        probabilities = []

        def known(position, p):
            probabilities.append(p)
            return values[:, position]

        self._autoregressive_pixels(size, latents, known)
        ordered = np.transpose(values, (1, 0, 2)).ravel().astype(np.int32)
        coder.encode_reverse(ordered, self._pixels, np.stack(probabilities).ravel())

    def _pop_pixels(self, coder, latents, size):
        """Inverse of `_push_pixels`: 0/1 bytes `(size, num_pixels)`."""
        shape = self.model.input_shape_
        if not self.model.autoregressive_layers:
            empty = np.zeros((len(latents[0]), *shape), np.float32)
            p = self._pixel_probabilities(empty, latents)
            return coder.decode(self._pixels, p[:size].ravel()).astype(np.uint8)
        decoded = np.zeros((size, shape[0] * shape[1], shape[2]), np.uint8)

        def pop(position, p):
            decoded[:, position] = coder.decode(self._pixels, p.ravel()).reshape(p.shape)
            return decoded[:, position]

        self._autoregressive_pixels(size, latents, pop)
        return decoded

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
        start = 0
        while start < len(bits):
            size = self._step_size(start, len(bits))
            x = bits[start : start + size]
            before = coder.num_bits()
            xb = self._padded(x, shape)
            above, buckets = [], []
            for group in range(self.model.num_groups):
                prior = self._prior_params(group, xb, above)
                mu, sigma = self._standard_posterior(group, xb, above, prior)
                chosen = coder.decode(
                    self._posterior_family, mu[:size].ravel(), sigma[:size].ravel()
                )
                if coder.num_words() < 4:
                    raise CompressionError("The bits-back seed is exhausted; use a smaller batch.")
                buckets.append(chosen)
                above.append(self._centres(prior, chosen, size))
            popped = before - coder.num_bits()
            self._push_pixels(coder, x, xb, above, size)
            # One call pushes z_L ... z_1 (z_1 on top): the decoder pops them
            # in the order of `buckets`.
            coder.encode_reverse(np.concatenate(buckets), self._prior)
            if self.ramp is None:
                # Each image in a step needs about `popped` bits of earlier
                # images' data below it; each image adds `net` bits.
                net = max(coder.num_bits() - before, 1)
                self.ramp = min(max(1, math.ceil(RAMP_MARGIN * popped / net)), MAX_RAMP)
            start += size
            if progress is not None:
                progress(start, len(bits))
        return self._finish_stream(coder)

    def decode(self, words, count, info, progress=None):
        """Inverse of `encode` (`info`: its dict, as in the stream's header):
        0/1 bytes of shape `(count, num_pixels)`."""
        coder = self._start_stream(words, info)
        shape = self.model.input_shape_
        bits = np.zeros((count, self.num_pixels), np.uint8)
        for start, size in reversed(self.steps(count)):
            flat = coder.decode(self._prior, size * self.latent_dim)
            buckets = np.split(flat, np.cumsum([size * n for n in self.group_sizes])[:-1])
            empty = np.zeros((self._padded_size(size), *shape), np.float32)
            above, priors = [], []
            for group in range(self.model.num_groups):
                priors.append(self._prior_params(group, empty, above))
                above.append(self._centres(priors[-1], buckets[group], size))
            x = self._pop_pixels(coder, above, size)
            bits[start : start + size] = x.reshape(size, self.num_pixels)
            xb = self._padded(bits[start : start + size], shape)
            for group in reversed(range(self.model.num_groups)):
                mu, sigma = self._standard_posterior(group, xb, above[:group], priors[group])
                coder.encode_reverse(
                    buckets[group], self._posterior_family, mu[:size].ravel(), sigma[:size].ravel()
                )
            if progress is not None:
                progress(count - start, count)
        self._check_stream_end(coder)
        return bits


def _group_pass(vae, group, mode, rows):
    """The `_GroupPass` of `vae` for batches of `rows` images, made (and
    compiled) once per model; kept out of Keras' tracking (the pass tracks
    the model). One pass per batch size: a compiled pass that has seen
    several sizes may run one of them with a generalised (unknown batch)
    graph, and its floats must not depend on which sizes a process coded
    before (the decoder meets the steps in reverse order)."""
    passes = vae.__dict__.get("_compression_passes")
    if passes is None:
        passes = {}
        object.__setattr__(vae, "_compression_passes", passes)
    if (group, mode, rows) not in passes:
        passes[group, mode, rows] = _GroupPass(vae, group, mode)
    return passes[group, mode, rows]


class _GroupPass(keras.Model):
    """One pass of a `HierarchicalVAE`, `[x, z_1, ..., z_{group}] -> ...`,
    run by `predict_on_batch` (compiled). `mode`: `"prior"` gives group
    `group`'s `(p_mean, p_log_var)` (`x` unused), `"posterior"` its
    `(q_mean, q_log_var)`, `"likelihood"` the pixel logits given every
    group (`x` unused; with a PixelCNN head the head's input features and
    the factorised logits `(h, base)` instead), `"head"` the logits of a
    PixelCNN head on the last row of a band of rows, from `[pixels, h,
    base_row, row_mask]` (`HierarchicalVAE._band_row_logits`). Kept out of
    the model's tracking, as its `ImportanceScorer`. Built on construction
    (no weights of its own), so that Keras' JAX `predict_on_batch` does not
    run `call` eagerly before compiling it."""

    def __init__(self, vae, group, mode):
        super().__init__(name=f"{vae.name}_{mode}_{group}")
        self.vae, self.group, self.mode = vae, group, mode
        self.built = True

    def call(self, inputs):
        if self.mode == "head":
            pixels, h, base_row, row_mask = inputs
            return self.vae._band_row_logits(h, pixels, base_row, row_mask)
        x, above = inputs[0], list(inputs[1:])
        batch = keras.ops.shape(x)[0]
        activations = self.vae._bottom_up(x) if self.mode == "posterior" else None
        h, groups = self.vae._top_down_features(
            batch, activations, latents=above, mean_latents=True
        )
        if self.mode == "likelihood":
            logits = self.vae.output_conv(h)
            return (h, logits) if self.vae.autoregressive_layers else logits
        entry = groups[self.group]
        if self.mode == "prior":
            return entry["p_mean"], entry["p_log_var"]
        return entry["q_mean"], entry["q_log_var"]
