import keras
import numpy as np
from keras import layers, ops

from keras_vae import losses
from keras_vae.layers.sampling import Sampling
from keras_vae.models import networks
from keras_vae.models.generative_model import GenerativeModel, check_count

LIKELIHOODS = ("bernoulli", "gaussian")
ARCHITECTURES = ("conv", "mlp")


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(GenerativeModel):
    """Variational autoencoder (Kingma & Welling, 2014) for images.

    The encoder gives a diagonal Gaussian posterior `q(z|x)`, the prior is
    `N(0, I)` and the decoder a Bernoulli or Gaussian likelihood `p(x|z)`.
    `fit` maximizes the ELBO `E_q[log p(x|z)] - KL(q(z|x) || p(z))`, with the
    KL in closed form. Losses are in nats per example, summed over pixels.

    Args:
        input_shape: tuple. Shape of one example, e.g. `(28, 28, 1)`.
        latent_dim: int. Size of `z`. Defaults to `32`.
        likelihood: `"bernoulli"` (inputs in `[0, 1]`) or `"gaussian"`.
            Defaults to `"bernoulli"`.
        decoder_variance: `"learned"` or a positive float. The variance of
            the Gaussian likelihood: one learned value per channel, or fixed.
            Ignored for Bernoulli. Defaults to `"learned"`.
        architecture: `"conv"` or `"mlp"`: the default networks built when
            `encoder` / `decoder` are not given. Defaults to `"conv"`.
        hidden_dims: tuple of ints. Filters per stride-2 stage (conv) or
            units per dense layer (mlp), listed encoder-first. Defaults to
            `(32, 64)`.
        encoder: optional `keras.Model` mapping images to a feature tensor
            of any shape; the VAE adds the dense `z_mean` / `z_log_var`
            heads. Replaces the default encoder network.
        decoder: optional `keras.Model` mapping `(batch, latent_dim)` to
            `(batch, *input_shape)` logits (Bernoulli) or means (Gaussian).
        kl_warmup_steps: int. Linearly ramps the KL weight from 0 to 1 over
            this many optimizer steps (Bowman et al. 2016; Sønderby et al.
            2016). `0` disables it. Defaults to `0`.
        free_bits: float. Minimum KL in nats per latent dimension in the
            objective (Kingma et al. 2016), averaged over the batch; the
            reported `kl_loss` stays the true KL. Defaults to `0.0`.
        seed: int or `None`. Seed of the sampling layer, i.e. of the noise
            drawn in training; that noise is `keras.random`'s and differs
            between backends (`sample` draws with NumPy and agrees across
            backends). Defaults to `None`.
        **kwargs: Base model keyword arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> model = VAE(input_shape=(28, 28, 1), latent_dim=2, seed=0)
    >>> model.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((64, 28, 28, 1), "float32")
    >>> history = model.fit(x, epochs=1, batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['kl_loss', 'loss', 'reconstruction_loss']
    >>> z_mean, z_log_var = model.encode(x[:4])
    >>> z_mean.shape
    (4, 2)
    >>> model.sample(3, seed=0).shape
    (3, 28, 28, 1)
    """

    loss_term_names = ("loss", "reconstruction_loss", "kl_loss")

    def __init__(
        self,
        input_shape,
        latent_dim=32,
        likelihood="bernoulli",
        decoder_variance="learned",
        architecture="conv",
        hidden_dims=(32, 64),
        encoder=None,
        decoder=None,
        kl_warmup_steps=0,
        free_bits=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_shape_ = tuple(int(d) for d in input_shape)
        self.latent_dim = int(latent_dim)
        self.likelihood = likelihood
        self.decoder_variance = decoder_variance
        self.architecture = architecture
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.free_bits = float(free_bits)
        self.seed = seed
        self._check_arguments()

        if isinstance(encoder, dict):
            encoder = keras.saving.deserialize_keras_object(encoder)
        if isinstance(decoder, dict):
            decoder = keras.saving.deserialize_keras_object(decoder)
        self.has_custom_encoder = encoder is not None
        self.has_custom_decoder = decoder is not None
        self.encoder = self._build_encoder(encoder)
        self.decoder = decoder or self._default_decoder()
        self.sampling = Sampling(seed=seed, name="sampling")
        self.decoder_log_var = None
        if likelihood == "gaussian":
            learned = decoder_variance == "learned"
            value = 0.0 if learned else float(np.log(decoder_variance))
            self.decoder_log_var = self.add_weight(
                shape=(self.input_shape_[-1],),
                initializer=keras.initializers.Constant(value),
                trainable=learned,
                name="decoder_log_var",
            )
        self.built = True

    def _check_arguments(self):
        if self.latent_dim <= 0:
            raise ValueError(f"`latent_dim` must be a positive int, got {self.latent_dim}.")
        if not self.input_shape_ or min(self.input_shape_) <= 0:
            raise ValueError(f"`input_shape` must be positive sizes, got {self.input_shape_}.")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"`likelihood` must be one of {LIKELIHOODS}, got {self.likelihood!r}.")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"`architecture` must be one of {ARCHITECTURES}, got {self.architecture!r}."
            )
        variance = self.decoder_variance
        if variance != "learned" and not (isinstance(variance, (int, float)) and variance > 0):
            raise ValueError(
                f"`decoder_variance` must be 'learned' or a positive float, got {variance!r}."
            )
        if self.kl_warmup_steps < 0 or self.free_bits < 0:
            raise ValueError("`kl_warmup_steps` and `free_bits` must be >= 0.")

    def _build_encoder(self, network):
        if network is None:
            build = networks.conv_encoder if self.architecture == "conv" else networks.mlp_encoder
            network = build(self.input_shape_, self.hidden_dims)
        inputs = keras.Input(shape=self.input_shape_)
        features = layers.Flatten()(network(inputs))
        # The posterior heads stay float32 under a mixed-precision policy:
        # the KL, the noise and `encode`'s outputs are full precision.
        z_mean = layers.Dense(self.latent_dim, dtype="float32", name="z_mean")(features)
        z_log_var = layers.Dense(self.latent_dim, dtype="float32", name="z_log_var")(features)
        return keras.Model(inputs, [z_mean, z_log_var], name="encoder")

    def _default_decoder(self):
        build = networks.conv_decoder if self.architecture == "conv" else networks.mlp_decoder
        return build(self.latent_dim, self.input_shape_, self.hidden_dims)

    # ------------------------------------------------------------------
    # Math (keras.ops only; used by the train step and the public verbs).

    def reconstruction_log_likelihood(self, x, outputs):
        """`log p(x|z)` per example from the decoder's raw outputs."""
        if self.likelihood == "bernoulli":
            return losses.bernoulli_log_likelihood(x, outputs)
        return losses.gaussian_log_likelihood(x, outputs, self.decoder_log_var)

    def likelihood_mean(self, outputs):
        """The mean of `p(x|z)`: probabilities (Bernoulli) or means."""
        if self.likelihood == "bernoulli":
            return ops.sigmoid(ops.cast(outputs, "float32"))
        return ops.cast(outputs, "float32")

    def kl_penalty(self, kl_per_dim, step):
        """The KL part of the objective from the batch-mean KL per dimension.

        Applies free bits and the linear warm-up; `BetaVAE` overrides it.
        """
        if self.free_bits > 0:
            kl_per_dim = ops.maximum(kl_per_dim, self.free_bits)
        kl = ops.sum(kl_per_dim)
        if self.kl_warmup_steps > 0:
            kl = kl * ops.minimum(1.0, (step + 1.0) / self.kl_warmup_steps)
        return kl

    def compute_loss_terms(self, x, training=False):
        step = self.advance_step(training)
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling([z_mean, z_log_var])
        outputs = self.decoder(z, training=training)
        reconstruction_loss = -ops.mean(self.reconstruction_log_likelihood(x, outputs))
        kl_per_dim = ops.mean(losses.gaussian_kl(z_mean, z_log_var), axis=0)
        return {
            "loss": reconstruction_loss + self.kl_penalty(kl_per_dim, step),
            "reconstruction_loss": reconstruction_loss,
            "kl_loss": ops.sum(kl_per_dim),
        }

    def call(self, inputs, training=None):
        z_mean, z_log_var = self.encoder(inputs, training=training)
        z = self.sampling([z_mean, z_log_var])
        outputs = self.decoder(z, training=training)
        return {
            "reconstruction": self.likelihood_mean(outputs),
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "z": z,
        }

    # ------------------------------------------------------------------
    # Input checks.

    def validate_inputs(self, x):
        x = np.asarray(x)
        self.check_image_batch(x, self.input_shape_)
        if self.likelihood == "bernoulli" and x.size and (x.min() < 0 or x.max() > 1):
            raise ValueError(
                "A Bernoulli likelihood needs inputs in [0, 1]; got values in "
                f"[{x.min()}, {x.max()}]. Scale pixels with x / 255, or use "
                "likelihood='gaussian'."
            )

    def _checked_latents(self, z):
        return self.check_latent_batch(z, self.latent_dim)

    # ------------------------------------------------------------------
    # Public verbs: NumPy in, NumPy out, batched.

    def encode(self, x, batch_size=256):
        """Posterior parameters `(z_mean, z_log_var)` of `q(z|x)` (NumPy)."""
        x = self._checked(x)
        return self._run_batched(
            lambda xb: tuple(self.encoder(xb, training=False)), [x], batch_size
        )

    def decode(self, z, batch_size=256):
        """Mean of `p(x|z)`: pixel probabilities (Bernoulli) or means."""
        z = self._checked_latents(z)
        return self._run_batched(
            lambda zb: self.likelihood_mean(self.decoder(zb, training=False)),
            [z],
            batch_size,
        )

    def reconstruct(self, x, batch_size=256):
        """Decodes the posterior mean of each input: `decode(encode(x)[0])`."""
        z_mean, _ = self.encode(x, batch_size=batch_size)
        return self.decode(z_mean, batch_size=batch_size)

    def sample(self, num_samples, seed=None, batch_size=256):
        """Decodes `num_samples` draws of the prior `N(0, I)`.

        Args:
            num_samples: int. How many images.
            seed: int or `None`. NumPy draws the latents
                (`np.random.default_rng(seed)`), so a seed gives the same
                images on every backend (to float tolerance). Defaults to
                `None`.
            batch_size: int. Images decoded at once. Defaults to `256`.
        """
        num_samples = check_count("num_samples", num_samples)
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((num_samples, self.latent_dim)).astype("float32")
        return self.decode(z, batch_size=batch_size)

    def elbo(self, x, num_samples=1, batch_size=256, seed=None):
        """Per-example ELBO in nats, averaged over `num_samples` draws of z.

        `seed` seeds `keras.random`: the draws differ between backends."""
        num_samples = check_count("num_samples", num_samples)
        x = self._checked(x)
        generator = keras.random.SeedGenerator(seed)

        def batch_elbo(xb):
            z_mean, z_log_var = self.encoder(xb, training=False)
            kl = ops.sum(losses.gaussian_kl(z_mean, z_log_var), axis=-1)
            total = 0.0
            for _ in range(num_samples):
                z = losses.reparameterize(z_mean, z_log_var, seed=generator)
                outputs = self.decoder(z, training=False)
                total = total + self.reconstruction_log_likelihood(xb, outputs)
            return total / num_samples - kl

        return self._run_batched(batch_elbo, [x], batch_size)

    def log_likelihood(self, x, num_samples=1000, batch_size=None, seed=0, max_decode=8192):
        """Importance-sampled estimate of `log p(x)` in nats, per example.

        The IWAE bound of Burda et al. (2016) with `q(z|x)` as proposal:
        `log mean_k p(x|z_k) p(z_k) / q(z_k|x)`, which tends to `log p(x)`
        as `num_samples` grows (the published protocol uses 5000). Each
        input is encoded once; the `num_samples * batch` latents are decoded
        in chunks of at most `max_decode` images, and the weights are
        combined with a stable log-sum-exp. Memory stays bounded by
        `max_decode` images and `num_samples * batch_size` floats.

        Args:
            x: array of shape `(n, *input_shape)`.
            num_samples: int. Importance samples per example.
            batch_size: int. Inputs encoded at once. Defaults to as many as
                fit `max_decode` decoded images with one sample each chunk.
            seed: int. Seed of the importance samples (`keras.random`: the
                draws, hence the estimate's noise, differ between
                backends). Defaults to `0`.
            max_decode: int. Largest number of images decoded in one call.

        Returns:
            NumPy array of shape `(n,)`.
        """
        num_samples = check_count("num_samples", num_samples)
        max_decode = check_count("max_decode", max_decode)
        batch_size = check_count("batch_size", batch_size, allow_none=True)
        x = self._checked(x)
        batch_size = batch_size or max(1, min(len(x), 500, max_decode))
        generator = keras.random.SeedGenerator(seed)
        results = []
        for start in range(0, len(x), batch_size):
            xb = ops.convert_to_tensor(x[start : start + batch_size])
            results.append(self._batch_log_likelihood(xb, num_samples, generator, max_decode))
        return np.concatenate(results)

    def _batch_log_likelihood(self, x, num_samples, generator, max_decode):
        batch = int(ops.shape(x)[0])
        z_mean, z_log_var = (ops.cast(t, "float32") for t in self.encoder(x, training=False))
        per_chunk = max(1, max_decode // batch)
        log_weights = []
        for done in range(0, num_samples, per_chunk):
            k = min(per_chunk, num_samples - done)
            z = losses.reparameterize(z_mean, z_log_var, seed=generator, sample_shape=(k,))
            flat_z = ops.convert_to_numpy(ops.reshape(z, (k * batch, self.latent_dim)))
            # predict_on_batch runs the decoder compiled (jit / tf.function,
            # no autograd), several times faster than eager calls.
            outputs = self.decoder.predict_on_batch(flat_z)
            x_rep = ops.tile(x, (k,) + (1,) * len(self.input_shape_))
            log_px_z = ops.reshape(self.reconstruction_log_likelihood(x_rep, outputs), (k, batch))
            log_weights.append(
                losses.importance_log_weights(
                    log_px_z,
                    losses.standard_normal_log_prob(z),
                    losses.diagonal_gaussian_log_prob(z, z_mean, z_log_var),
                )
            )
        log_weights = ops.concatenate(log_weights, axis=0)
        return ops.convert_to_numpy(losses.importance_sampled_log_likelihood(log_weights, axis=0))

    def anomaly_score(self, x, num_samples=1, seed=0, batch_size=256):
        """Per-example anomaly score: the negative ELBO, or the negative
        importance-sampled log-likelihood, in nats (higher: more anomalous).

        Pick a decision threshold on held-out normal data with
        `keras_vae.metrics.anomaly_threshold`.

        The score is deterministic by default: the posterior noise comes
        from `seed` (`0`), so the same input gets the same score on every
        call (on one backend). Invalid input is refused, never scored: a
        `ValueError` names NaN or infinite pixels and, for a Bernoulli
        likelihood, pixels outside `[0, 1]` (an image of 255s would
        otherwise score as more normal than any digit). The exported
        `score` signature (`keras_vae.export`) instead scores such examples
        `+inf`, so that one bad image does not fail a served batch.

        Args:
            x: array of shape `(n, *input_shape)`.
            num_samples: int. `1` scores with the one-sample ELBO (closed-form
                KL); `k > 1` with the IWAE estimate of `-log p(x)` from `k`
                importance samples (lower variance, `k` times the cost).
                Defaults to `1`.
            seed: int or `None`. Seed of the posterior samples; `None`
                draws fresh noise on each call. Defaults to `0`.
            batch_size: int. Examples scored at once. Defaults to `256`.

        Returns:
            NumPy array of shape `(n,)`.

        Example:

        >>> model = VAE(input_shape=(28, 28, 1), latent_dim=2)
        >>> x = np.random.default_rng(0).random((5, 28, 28, 1), "float32")
        >>> scores = model.anomaly_score(x)
        >>> scores.shape
        (5,)
        >>> bool(np.all(scores == model.anomaly_score(x)))
        True
        """
        num_samples = check_count("num_samples", num_samples)
        if num_samples > 1:
            return -self.log_likelihood(x, num_samples=num_samples, seed=seed)
        x = self._checked(x)
        generator = keras.random.SeedGenerator(seed)

        def batch_score(xb):
            noise = keras.random.normal((ops.shape(xb)[0], 1, self.latent_dim), seed=generator)
            return self.score_from_noise(xb, noise)["score"]

        return self._run_batched(batch_score, [x], batch_size)

    # ------------------------------------------------------------------
    # Serving protocol (tensors in, dicts of tensors out; keras_vae.export).

    def serving_spec(self, score_num_samples=1):
        return {
            "inputs": ("images", self.input_shape_, "float32"),
            "codes": ("z", (self.latent_dim,), "float32"),
            "sample_noise": ((self.latent_dim,), "normal"),
            "score_noise": ((int(score_num_samples), self.latent_dim), "normal"),
            "valid_inputs": "finite pixels"
            + (" in [0, 1]" if self.likelihood == "bernoulli" else ""),
        }

    def screen_inputs_tensor(self, inputs):
        """See `GenerativeModel.screen_inputs_tensor`. Invalid: a NaN or
        infinite pixel, or with a Bernoulli likelihood a pixel outside
        `[0, 1]` (the checks of `validate_inputs`, per example)."""
        valid, inputs = super().screen_inputs_tensor(inputs)
        if self.likelihood == "bernoulli":
            axes = tuple(range(1, len(self.input_shape_) + 1))
            in_range = ops.all(ops.logical_and(inputs >= 0.0, inputs <= 1.0), axis=axes)
            valid = ops.logical_and(valid, in_range)
            keep = ops.reshape(valid, (-1,) + (1,) * len(self.input_shape_))
            inputs = ops.where(keep, inputs, ops.zeros_like(inputs))
        return valid, inputs

    def encode_tensor(self, inputs):
        z_mean, z_log_var = self.encoder(inputs, training=False)
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def decode_tensor(self, codes):
        return {"images": self.likelihood_mean(self.decoder(codes, training=False))}

    def reconstruct_tensor(self, inputs):
        z_mean, _ = self.encoder(inputs, training=False)
        outputs = self.decoder(z_mean, training=False)
        return {"reconstruction": self.likelihood_mean(outputs)}

    def sample_from_noise(self, noise):
        return {"samples": self.decode_tensor(noise)["images"]}

    def score_from_noise(self, inputs, noise):
        """Negative ELBO (`noise` of shape `(batch, 1, latent_dim)`) or
        negative IWAE bound (`(batch, k, latent_dim)`, `k > 1`) per example."""
        inputs = ops.cast(inputs, "float32")
        z_mean, z_log_var = self.encoder(inputs, training=False)
        noise = ops.cast(noise, "float32")
        num_samples = noise.shape[1]
        z = losses.reparameterize(z_mean[:, None], z_log_var[:, None], noise=noise)
        flat_z = ops.reshape(z, (-1, self.latent_dim))
        outputs = self.decoder(flat_z, training=False)
        x_rep = ops.repeat(inputs, num_samples, axis=0)
        log_px_z = ops.reshape(
            self.reconstruction_log_likelihood(x_rep, outputs), (-1, num_samples)
        )
        return {"score": losses.negative_bound(log_px_z, z, z_mean, z_log_var)}

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "input_shape": self.input_shape_,
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "decoder_variance": self.decoder_variance,
            "architecture": self.architecture,
            "hidden_dims": self.hidden_dims,
            # The encoder wrapper is [input, network, flatten, heads].
            "encoder": serialize(self.encoder.layers[1]) if self.has_custom_encoder else None,
            "decoder": serialize(self.decoder) if self.has_custom_decoder else None,
            "kl_warmup_steps": self.kl_warmup_steps,
            "free_bits": self.free_bits,
            "seed": self.seed,
        }
