import keras
import numpy as np
from keras import layers, ops

from keras_vae import losses
from keras_vae.layers.inverse_autoregressive_flow import InverseAutoregressiveFlow
from keras_vae.layers.sampling import Sampling
from keras_vae.models import networks
from keras_vae.models.generative_model import (
    GenerativeModel,
    check_count,
    check_objective,
    check_posterior,
)
from keras_vae.models.importance_scorer import ImportanceScorer

LIKELIHOODS = ("bernoulli", "gaussian")
ARCHITECTURES = ("conv", "mlp")


@keras.saving.register_keras_serializable(package="keras_vae")
class VAE(GenerativeModel):
    """Variational autoencoder (Kingma & Welling, 2014) for images.

    The encoder gives a diagonal Gaussian posterior `q(z|x)`, the prior is
    `N(0, I)` and the decoder a Bernoulli or Gaussian likelihood `p(x|z)`.
    `fit` maximizes the ELBO `E_q[log p(x|z)] - KL(q(z|x) || p(z))`, with the
    KL in closed form. Losses are in nats per example, summed over pixels.

    Two options tighten the bound (issue 21):

    - `posterior="iaf"`: the Gaussian draw `z0` goes through an inverse
      autoregressive flow (Kingma et al. 2016, `InverseAutoregressiveFlow`)
      of `flow_steps` steps, conditioned on a context `h` that the encoder
      outputs beside `z_mean` / `z_log_var`. The KL has no closed form any
      more: it is the one-sample Monte Carlo estimate
      `log q(z|x) - log p(z)`, with `log q(z|x) = log N(z0; z_mean,
      exp(z_log_var)) - log|det dz/dz0|`, in the loss, in `elbo` and in the
      importance weights of `log_likelihood`. `encode` then returns the
      flowed code `z = f(z_mean; h)` (the flow applied to the base mean,
      zero noise) as `z_mean`, and the base Gaussian's log-variance as
      `z_log_var` (a spread of `z0`, not of `z`: `q(z|x)` is not Gaussian).
    - `objective="iwae"`: `fit` maximizes the importance-weighted bound of
      Burda et al. (2016) with `num_importance_samples` samples per
      example, `log mean_k p(x|z_k) p(z_k) / q(z_k|x)`
      (`keras_vae.losses.importance_weighted_bound`, the estimator of
      `log_likelihood` too). The logs keep `reconstruction_loss` and
      `kl_loss` (their sum is the negative ELBO, comparable with an ELBO
      run) and add `iwae_loss`, the negative IWAE bound; `loss` is the
      objective (with KL warm-up, the weights use `kl_weight * (log p(z) -
      log q(z|x))`).

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
        decoder_upsampling: how the default conv decoder doubles its
            resolution: `"sub_pixel_transpose"` (a stride-2 3x3 transposed
            convolution computed as `kv.layers.SubPixelConvTranspose2D`)
            or `"nearest"` (`UpSampling2D` then a 3x3 convolution, the
            default of keras-vae 0.1: a config saved without this argument
            loads with it). Defaults to `"sub_pixel_transpose"`.
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
        posterior: `"gaussian"` (diagonal) or `"iaf"` (a Gaussian followed
            by an inverse autoregressive flow). Defaults to `"gaussian"`.
        flow_steps: int. Steps of the flow: `>= 1` with `posterior="iaf"`,
            `0` with `"gaussian"`. Defaults to `None`: `2` for `"iaf"`, `0`
            otherwise.
        flow_hidden_dims: tuple of ints. Hidden units of each step's MADE
            network; the context `h` has `flow_hidden_dims[0]` units.
            Ignored without a flow. Defaults to `(256, 256)`.
        objective: `"elbo"` or `"iwae"`. Defaults to `"elbo"`.
        num_importance_samples: int `>= 1`. Samples per example of the
            IWAE objective (`1` with `"elbo"`). Defaults to `None`: `5` for
            `"iwae"`, `1` otherwise.
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

    An IAF posterior trained with the IWAE objective (5 samples per image):

    >>> iaf = VAE(input_shape=(28, 28, 1), latent_dim=2, posterior="iaf",
    ...           flow_steps=2, objective="iwae", num_importance_samples=5)
    >>> iaf.loss_term_names
    ('loss', 'reconstruction_loss', 'kl_loss', 'iwae_loss')
    >>> iaf.encode(x[:4])[0].shape
    (4, 2)
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
        posterior="gaussian",
        flow_steps=None,
        flow_hidden_dims=(256, 256),
        objective="elbo",
        num_importance_samples=None,
        decoder_upsampling="sub_pixel_transpose",
        **kwargs,
    ):
        if objective == "iwae":  # One more logged term (read by the base class).
            self.loss_term_names = type(self).loss_term_names + ("iwae_loss",)
        super().__init__(**kwargs)
        self.posterior = posterior
        self.flow_steps, self.flow_hidden_dims = check_posterior(
            posterior, flow_steps, flow_hidden_dims
        )
        self.objective = objective
        if num_importance_samples is None:
            num_importance_samples = 5 if objective == "iwae" else 1
        self.num_importance_samples = int(num_importance_samples)
        self.input_shape_ = tuple(int(d) for d in input_shape)
        self.latent_dim = int(latent_dim)
        self.likelihood = likelihood
        self.decoder_variance = decoder_variance
        self.architecture = architecture
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.decoder_upsampling = decoder_upsampling
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
        self.flow = None
        if self.posterior == "iaf":
            # float32 like the posterior heads: log q(z|x) is full precision.
            self.flow = InverseAutoregressiveFlow(
                self.flow_steps, self.flow_hidden_dims, dtype="float32", name="flow"
            )
            self.flow.build((None, self.latent_dim), (None, self.context_dim))
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
        if self.decoder_upsampling not in networks.UPSAMPLINGS:
            raise ValueError(
                f"`decoder_upsampling` must be one of {networks.UPSAMPLINGS}, "
                f"got {self.decoder_upsampling!r}."
            )
        variance = self.decoder_variance
        if variance != "learned" and not (isinstance(variance, (int, float)) and variance > 0):
            raise ValueError(
                f"`decoder_variance` must be 'learned' or a positive float, got {variance!r}."
            )
        if self.kl_warmup_steps < 0 or self.free_bits < 0:
            raise ValueError("`kl_warmup_steps` and `free_bits` must be >= 0.")
        self._check_posterior_and_objective()

    def _check_posterior_and_objective(self):
        check_objective(self.objective, self.num_importance_samples)
        if self.objective == "iwae" and self.free_bits > 0:
            raise ValueError(
                "`free_bits` does not combine with `objective='iwae'` (the importance "
                "weights have no per-dimension KL to floor); use `kl_warmup_steps`."
            )

    @property
    def context_dim(self):
        """Size of the encoder's context `h` for the flow (`0` without one)."""
        return self.flow_hidden_dims[0] if self.posterior == "iaf" else 0

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
        outputs = [z_mean, z_log_var]
        if self.context_dim:  # The flow's context h (Kingma et al. 2016).
            context = layers.Dense(self.context_dim, dtype="float32", name="context")
            outputs.append(context(features))
        return keras.Model(inputs, outputs, name="encoder")

    def _default_decoder(self):
        if self.architecture == "mlp":
            return networks.mlp_decoder(self.latent_dim, self.input_shape_, self.hidden_dims)
        return networks.conv_decoder(
            self.latent_dim,
            self.input_shape_,
            self.hidden_dims,
            upsampling=self.decoder_upsampling,
        )

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

    def kl_weight(self, step):
        """The KL warm-up weight after `step` optimizer steps (`1.0` without
        warm-up): rises linearly to 1 over `kl_warmup_steps`."""
        if self.kl_warmup_steps == 0:
            return 1.0
        return ops.minimum(1.0, (step + 1.0) / self.kl_warmup_steps)

    def kl_penalty(self, kl_per_dim, step):
        """The KL part of the objective from the batch-mean KL per dimension.

        Applies free bits and the linear warm-up; `BetaVAE` overrides it.
        """
        if self.free_bits > 0:
            kl_per_dim = ops.maximum(kl_per_dim, self.free_bits)
        kl = ops.sum(kl_per_dim)
        if self.kl_warmup_steps > 0:
            kl = kl * self.kl_weight(step)
        return kl

    def posterior_parameters(self, x, training=False):
        """`(z_mean, z_log_var, context)` of `q(z|x)` for a batch `x`: the
        base Gaussian and the flow's context (`None` without a flow)."""
        outputs = self.encoder(x, training=training)
        return outputs[0], outputs[1], (outputs[2] if self.flow is not None else None)

    def draw_posterior(self, z_mean, z_log_var, context, seed=None, sample_shape=(), noise=None):
        """Draws `z ~ q(z|x)`; returns `(z, log_q)`.

        `z0 = z_mean + exp(z_log_var / 2) * eps` (`losses.reparameterize`;
        `seed`, `sample_shape` and `noise` as there), then the flow if any.
        `log_q` holds the per-dimension terms of `log q(z|x)`
        (`losses.flow_log_prob`), shape of `z`, float32. With noise of
        shape `(batch, k, latent_dim)`, pass `z_mean[:, None]`, ... and
        `context[:, None]`.
        """
        z0 = losses.reparameterize(
            z_mean, z_log_var, seed=seed, sample_shape=sample_shape, noise=noise
        )
        z, log_det = z0, 0.0
        if self.flow is not None:
            z, log_det = self.flow(z0, context)
        return z, losses.flow_log_prob(z0, z_mean, z_log_var, log_det)

    def posterior_code(self, x, training=False):
        """The deterministic code of `encode`: `(z_mean, z_log_var)`, with
        `z_mean` pushed through the flow (zero noise) for `posterior="iaf"`."""
        z_mean, z_log_var, context = self.posterior_parameters(x, training)
        if self.flow is not None:
            z_mean, _ = self.flow(z_mean, context)
        return z_mean, z_log_var

    def samples_log_likelihood(self, x, z, training=False):
        """`log p(x|z_k)` of `k` latents per example: `z` of shape
        `(k, batch, latent_dim)` gives shape `(k, batch)`."""
        num_samples = z.shape[0]
        outputs = self.decoder(ops.reshape(z, (-1, self.latent_dim)), training=training)
        if num_samples > 1:
            x = ops.tile(x, (num_samples,) + (1,) * len(self.input_shape_))
        return ops.reshape(self.reconstruction_log_likelihood(x, outputs), (num_samples, -1))

    def compute_loss_terms(self, x, training=False):
        step = self.advance_step(training)
        z_mean, z_log_var, context = self.posterior_parameters(x, training)
        if self.flow is None and self.objective == "elbo":
            z = self.sampling([z_mean, z_log_var])
            outputs = self.decoder(z, training=training)
            reconstruction_loss = -ops.mean(self.reconstruction_log_likelihood(x, outputs))
            kl_per_dim = ops.mean(losses.gaussian_kl(z_mean, z_log_var), axis=0)
            return {
                "loss": reconstruction_loss + self.kl_penalty(kl_per_dim, step),
                "reconstruction_loss": reconstruction_loss,
                "kl_loss": ops.sum(kl_per_dim),
            }
        # k samples per example (k = 1 for the ELBO with a flow): a Monte
        # Carlo KL, and the importance weights of the IWAE objective.
        z, log_q = self.draw_posterior(
            z_mean,
            z_log_var,
            context,
            seed=self.sampling.seed_generator,
            sample_shape=(self.num_importance_samples,),
        )
        log_px_z = self.samples_log_likelihood(x, z, training)
        if self.flow is None:  # The exact KL in the logs: less noise.
            kl_per_dim = ops.mean(losses.gaussian_kl(z_mean, z_log_var), axis=0)
        else:
            kl_per_dim = ops.mean(losses.monte_carlo_kl(z, log_q), axis=(0, 1))
        terms = {"reconstruction_loss": -ops.mean(log_px_z), "kl_loss": ops.sum(kl_per_dim)}
        if self.objective == "elbo":
            terms["loss"] = terms["reconstruction_loss"] + self.kl_penalty(kl_per_dim, step)
            return terms
        log_pz = losses.standard_normal_log_prob(z)
        log_qz = ops.sum(log_q, axis=-1)
        iwae, _ = losses.importance_weighted_bound(log_px_z, log_pz, log_qz, axis=0)
        terms["iwae_loss"] = terms["loss"] = -ops.mean(iwae)
        if self.kl_warmup_steps > 0:
            warm, _ = losses.importance_weighted_bound(
                log_px_z, log_pz, log_qz, axis=0, kl_weight=self.kl_weight(step)
            )
            terms["loss"] = -ops.mean(warm)
        return terms

    def call(self, inputs, training=None):
        z_mean, z_log_var, context = self.posterior_parameters(inputs, training)
        if self.flow is None:
            z = self.sampling([z_mean, z_log_var])
        else:
            z, _ = self.draw_posterior(z_mean, z_log_var, context, self.sampling.seed_generator)
            z_mean, _ = self.flow(z_mean, context)
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
        """Posterior parameters `(z_mean, z_log_var)` of `q(z|x)` (NumPy).

        With `posterior="iaf"`, `z_mean` is the flowed code `f(z_mean; h)`
        (the flow applied to the base Gaussian's mean, zero noise) and
        `z_log_var` the base Gaussian's log-variance."""
        x = self._checked(x)
        return self._run_batched(lambda xb: self.posterior_code(xb), [x], batch_size)

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

        `seed` seeds `keras.random`: the draws differ between backends. The
        KL is in closed form for the Gaussian posterior and a Monte Carlo
        estimate `log q(z|x) - log p(z)` of each draw with a flow."""
        num_samples = check_count("num_samples", num_samples)
        x = self._checked(x)
        generator = keras.random.SeedGenerator(seed)

        def batch_elbo(xb):
            z_mean, z_log_var, context = self.posterior_parameters(xb)
            kl = ops.sum(losses.gaussian_kl(z_mean, z_log_var), axis=-1)
            total = 0.0
            for _ in range(num_samples):
                z, log_q = self.draw_posterior(z_mean, z_log_var, context, seed=generator)
                if self.flow is not None:
                    kl = ops.sum(losses.monte_carlo_kl(z, log_q), axis=-1)
                outputs = self.decoder(z, training=False)
                total = total + self.reconstruction_log_likelihood(xb, outputs) - kl
            return total / num_samples

        return self._run_batched(batch_elbo, [x], batch_size)

    def log_likelihood(
        self,
        x,
        num_samples=1000,
        batch_size=None,
        seed=0,
        max_decode=None,
        compute_dtype="float32",
    ):
        """Importance-sampled estimate of `log p(x)` in nats, per example.

        The IWAE bound of Burda et al. (2016) with `q(z|x)` as proposal:
        `log mean_k p(x|z_k) p(z_k) / q(z_k|x)`, which tends to `log p(x)`
        as `num_samples` grows (the published protocol uses 5000). Each
        batch of inputs is one compiled call (`ImportanceScorer`): it is
        encoded once, its `num_samples * batch` latents are decoded in
        chunks of at most `max_decode` images inside one loop, and the
        weights are folded into a running float32 log-sum-exp. Memory stays
        bounded by `max_decode` decoded images and the
        `num_samples * batch * latent_dim` noise floats. On torch an
        evaluation of 200,000 draws or more (`n * num_samples`) runs the
        decoder under `torch.compile` (about 10 s of compiling, then 1.5x
        faster for `vae_binarized_mnist`); `KERAS_VAE_TORCH_COMPILE=0` in
        the environment turns it off, `=1` compiles at any size.

        Args:
            x: array of shape `(n, *input_shape)`.
            num_samples: int. Importance samples per example.
            batch_size: int. Inputs encoded at once. Defaults to
                `min(n, 500, max_decode)`; fewer where the batch's noise
                would exceed `MAX_NOISE_FLOATS` of
                `keras_vae.models.importance_scorer` (256 MiB).
            seed: int. Seed of the importance samples (`keras.random`: the
                draws, hence the estimate's noise, differ between
                backends). Defaults to `0`.
            max_decode: int. Largest number of images decoded in one step
                of the loop. Defaults to `None`: `8192` on torch, `256` on
                TensorFlow and JAX. Measured on a CPU for
                `vae_binarized_mnist` (`benchmarks/max_decode.py`): 256
                was 4% faster than 8192 on JAX idle (1.2x loaded) and no
                slower on TensorFlow; on torch 9% slower idle (2x loaded).
            compute_dtype: `"float32"` or `"bfloat16"`. With `"bfloat16"`
                the decoder runs a copy of itself under the
                `"mixed_bfloat16"` policy (float32 weights cast to bfloat16,
                bfloat16 matmuls and convolutions), except its output
                layer, which stays float32; the encoder, the log-likelihood
                and the log-sum-exp stay float32. Faster where the CPU has
                bfloat16 units (oneDNN on TensorFlow), at a small cost in
                accuracy: measure it on your model (`benchmarks/eval_speed.py`
                reports the mean difference for `vae_binarized_mnist`).
                Defaults to `"float32"`.

        Returns:
            NumPy array of shape `(n,)`.
        """
        if compute_dtype not in ("float32", "bfloat16"):
            raise ValueError(
                f"`compute_dtype` must be 'float32' or 'bfloat16', got {compute_dtype!r}."
            )
        num_samples = check_count("num_samples", num_samples)
        if max_decode is None:
            max_decode = 8192 if keras.backend.backend() == "torch" else 256
        max_decode = check_count("max_decode", max_decode)
        batch_size = check_count("batch_size", batch_size, allow_none=True)
        x = self._checked(x)
        batch_size = batch_size or max(1, min(len(x), 500, max_decode))
        return self._importance_scorer(compute_dtype).log_likelihood(
            x, num_samples, batch_size, seed, max_decode
        )

    def _importance_scorer(self, compute_dtype="float32"):
        """The compiled `log_likelihood` of this model for `compute_dtype`,
        made once each. Kept out of Keras' tracking (the scorer refers to
        this model). The bfloat16 decoder copy gets the current weights."""
        scorers = self.__dict__.setdefault("_scorers", {})
        if compute_dtype not in scorers:
            decoder = None if compute_dtype == "float32" else self._bfloat16_decoder()
            scorers[compute_dtype] = ImportanceScorer(self, decoder)
        scorer = scorers[compute_dtype]
        if scorer.scored_decoder is not None:
            scorer.scored_decoder.set_weights(self.decoder.get_weights())
        return scorer

    def _bfloat16_decoder(self):
        """A copy of the decoder under `"mixed_bfloat16"`, output layer
        float32 (`log_likelihood(compute_dtype="bfloat16")`)."""
        last = self.decoder.layers[-1]

        def clone(layer):
            config = layer.get_config()
            config["dtype"] = "float32" if layer is last else "mixed_bfloat16"
            return layer.__class__.from_config(config)

        try:
            return keras.models.clone_model(self.decoder, clone_function=clone)
        except ValueError as error:
            raise ValueError(
                "`compute_dtype='bfloat16'` copies the decoder, which must be a Functional "
                f"or Sequential model; {type(self.decoder).__name__} could not be cloned: {error}"
            ) from error

    def importance_log_weight_fn(self, x, decoder=None):
        """Encodes `x` once; returns `noise -> log importance weights`.

        The returned function maps standard-normal noise of shape
        `(k, batch, latent_dim)` to the `(k, batch)` float32 log-weights
        `log p(x|z) + log p(z) - log q(z|x)` of the draws
        `z = draw_posterior(..., noise=noise)`, decoded by `decoder`
        (defaults to `self.decoder`). Used by `ImportanceScorer`.
        """
        decoder = decoder or self.decoder
        z_mean, z_log_var, context = self.posterior_parameters(x)
        x_shape = tuple(self.input_shape_)

        def log_weights(noise):
            z, log_q = self.draw_posterior(z_mean, z_log_var, context, noise=noise)
            k, batch = ops.shape(noise)[0], ops.shape(noise)[1]
            outputs = decoder(ops.reshape(z, (-1, self.latent_dim)), training=False)
            x_rep = ops.tile(x, (k,) + (1,) * len(x_shape))
            log_px_z = ops.reshape(self.reconstruction_log_likelihood(x_rep, outputs), (k, batch))
            return losses.importance_log_weights(
                log_px_z, losses.standard_normal_log_prob(z), ops.sum(log_q, axis=-1)
            )

        return log_weights

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
        value_range = (0.0, 1.0) if self.likelihood == "bernoulli" else None
        return super().screen_inputs_tensor(inputs, value_range=value_range)

    def encode_tensor(self, inputs):
        z_mean, z_log_var = self.posterior_code(inputs)
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def decode_tensor(self, codes):
        return {"images": self.likelihood_mean(self.decoder(codes, training=False))}

    def reconstruct_tensor(self, inputs):
        z_mean, _ = self.posterior_code(inputs)
        outputs = self.decoder(z_mean, training=False)
        return {"reconstruction": self.likelihood_mean(outputs)}

    def sample_from_noise(self, noise):
        return {"samples": self.decode_tensor(noise)["images"]}

    def score_from_noise(self, inputs, noise):
        """Negative ELBO (`noise` of shape `(batch, 1, latent_dim)`) or
        negative IWAE bound (`(batch, k, latent_dim)`, `k > 1`) per example;
        with a flow, the KL of the one-sample ELBO is a Monte Carlo estimate."""
        inputs = ops.cast(inputs, "float32")
        z_mean, z_log_var, context = self.posterior_parameters(inputs)
        noise = ops.cast(noise, "float32")
        num_samples = noise.shape[1]
        if context is not None:
            context = context[:, None]
        z, log_q = self.draw_posterior(z_mean[:, None], z_log_var[:, None], context, noise=noise)
        flat_z = ops.reshape(z, (-1, self.latent_dim))
        outputs = self.decoder(flat_z, training=False)
        x_rep = ops.repeat(inputs, num_samples, axis=0)
        log_px_z = ops.reshape(
            self.reconstruction_log_likelihood(x_rep, outputs), (-1, num_samples)
        )
        if self.flow is not None:
            log_pz, log_qz = losses.standard_normal_log_prob(z), ops.sum(log_q, axis=-1)
            iwae, _ = losses.importance_weighted_bound(log_px_z, log_pz, log_qz, axis=1)
            return {"score": -iwae}
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
            "posterior": self.posterior,
            "flow_steps": self.flow_steps,
            "flow_hidden_dims": self.flow_hidden_dims,
            "objective": self.objective,
            "num_importance_samples": self.num_importance_samples,
            "decoder_upsampling": self.decoder_upsampling,
        }

    @classmethod
    def from_config(cls, config):
        # A config without `decoder_upsampling` was saved by keras-vae 0.1,
        # whose default conv decoder upsampled by nearest neighbours.
        return super().from_config({"decoder_upsampling": "nearest", **config})
