import math

import keras
import numpy as np
from keras import layers, ops

from keras_vae import losses
from keras_vae.layers.depth_to_space import DepthToSpace
from keras_vae.layers.residual_block import ResidualBlock
from keras_vae.layers.vector_quantizer import VectorQuantizer
from keras_vae.models import networks
from keras_vae.models.generative_model import GenerativeModel, check_count
from keras_vae.models.transformer_prior import TransformerPrior
from keras_vae.training.inputs import to_numpy


@keras.saving.register_keras_serializable(package="keras_vae")
class VQVAE(GenerativeModel):
    """Vector-quantized VAE (van den Oord et al. 2017) with a learned prior.

    A convolutional encoder with residual blocks maps an image to a grid of
    `embedding_dim`-vectors (`z_e`), one per `2 ** len(hidden_dims)` pixels
    square; a `VectorQuantizer` replaces each by its nearest code, and the
    decoder maps the quantized grid back to the image. With
    `input_shape=(28, 28, 1)` and `hidden_dims=(32, 64)` the code grid is
    7x7, so an image is 49 integers in `[0, num_embeddings)`.

    Training (`fit`) minimizes `||x - decoder(z_q)||^2 / data_variance +
    vq_loss`: a Gaussian likelihood with fixed variance, i.e. the mean
    squared error, plus the commitment loss (and, without EMA, the codebook
    loss). The logs report the MSE per pixel (`reconstruction_loss`), the
    quantizer's loss (`vq_loss`), the codebook `perplexity` and
    `codebook_usage`, the fraction of codes used in the batch.

    Sampling needs a second stage: an autoregressive prior over the codes
    (`TransformerPrior`), trained by `fit_prior(x_train)` on the codes of
    the training set once the VQ-VAE is trained. The prior is part of the
    model: it is saved in the same `.keras` file, and `sample` draws codes
    from it and decodes them.

    Args:
        input_shape: tuple `(height, width, channels)`, both sizes divisible
            by `2 ** len(hidden_dims)`.
        num_embeddings: int. Codebook size `K`. Defaults to `128`.
        embedding_dim: int. Size of each code. Defaults to `16`.
        hidden_dims: tuple of ints. Filters of each stride-2 stage of the
            encoder (the decoder mirrors them). Defaults to `(32, 64)`.
        num_residual_blocks: int. Residual blocks after the encoder's and
            before the decoder's resolution changes. Defaults to `2`.
        residual_hidden_dim: int. Inner channels of the residual blocks.
            Defaults to `32`.
        commitment_cost: float. `beta` of the commitment loss. Defaults to
            `0.25`.
        use_ema: bool. Learn the codebook by moving averages. Defaults to
            `True`.
        decay: float. Decay of the codebook's moving averages. Defaults to
            `0.99`.
        dead_code_threshold: float. Restart codes used by fewer vectors per
            batch than this (moving average) from encoder outputs. `0`
            disables restarts. Defaults to `1.0`.
        data_variance: float. Variance of the Gaussian likelihood; the MSE
            is divided by it in the loss (Sonnet's VQ-VAE example uses the
            training set's pixel variance). Defaults to `1.0`.
        prior: optional `TransformerPrior` (or its config) over the code
            grid. Usually created by `fit_prior`. Defaults to `None`.
        seed: int or `None`. Seed of the quantizer (initialization, dead
            code restarts).
        **kwargs: Base model keyword arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> model = VQVAE(input_shape=(16, 16, 1), num_embeddings=32,
    ...               hidden_dims=(8, 16), residual_hidden_dim=8, seed=0)
    >>> model.compile(optimizer="adam")
    >>> x = np.random.default_rng(0).random((64, 16, 16, 1), "float32")
    >>> history = model.fit(x, epochs=1, batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['codebook_usage', 'loss', 'perplexity', 'reconstruction_loss', 'vq_loss']
    >>> codes = model.encode(x[:4])
    >>> codes.shape
    (4, 4, 4)
    >>> model.decode_indices(codes).shape
    (4, 16, 16, 1)
    >>> _ = model.fit_prior(x, epochs=1, batch_size=32, verbose=0)
    >>> model.sample(2, seed=0).shape
    (2, 16, 16, 1)
    """

    loss_term_names = (
        "loss",
        "reconstruction_loss",
        "vq_loss",
        "perplexity",
        "codebook_usage",
    )

    def __init__(
        self,
        input_shape,
        num_embeddings=128,
        embedding_dim=16,
        hidden_dims=(32, 64),
        num_residual_blocks=2,
        residual_hidden_dim=32,
        commitment_cost=0.25,
        use_ema=True,
        decay=0.99,
        dead_code_threshold=1.0,
        data_variance=1.0,
        prior=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_shape_ = tuple(int(d) for d in input_shape)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.num_residual_blocks = int(num_residual_blocks)
        self.residual_hidden_dim = int(residual_hidden_dim)
        self.commitment_cost = float(commitment_cost)
        self.use_ema = bool(use_ema)
        self.decay = float(decay)
        self.dead_code_threshold = float(dead_code_threshold)
        self.data_variance = float(data_variance)
        self.seed = seed
        if not self.hidden_dims:
            raise ValueError("`hidden_dims` needs at least one stage.")
        networks.check_conv_shape(self.input_shape_, len(self.hidden_dims))
        if self.num_residual_blocks < 0:
            raise ValueError("`num_residual_blocks` must be >= 0.")
        if not self.data_variance > 0:
            raise ValueError(
                f"`data_variance` must be > 0, got {data_variance}."
            )
        factor = 2 ** len(self.hidden_dims)
        self.grid_shape = (
            self.input_shape_[0] // factor,
            self.input_shape_[1] // factor,
        )

        self.encoder = self._build_encoder()
        self.quantizer = VectorQuantizer(
            self.num_embeddings,
            self.embedding_dim,
            commitment_cost=self.commitment_cost,
            use_ema=self.use_ema,
            decay=self.decay,
            dead_code_threshold=self.dead_code_threshold,
            seed=seed,
            # Distances, EMA statistics and the codebook stay float32 under
            # a mixed-precision policy.
            dtype="float32",
            name="quantizer",
        )
        self.decoder = self._build_decoder()
        self.prior = None
        if prior is not None:
            self.set_prior(prior)
        self.built = True

    def _residual_stack(self, x, prefix):
        for i in range(self.num_residual_blocks):
            x = ResidualBlock(
                self.residual_hidden_dim, name=f"{prefix}_res_{i}"
            )(x)
        return layers.ReLU()(x)

    def _build_encoder(self):
        inputs = keras.Input(shape=self.input_shape_)
        x = inputs
        for filters in self.hidden_dims:
            x = layers.Conv2D(
                filters, 4, strides=2, padding="same", activation="relu"
            )(x)
        x = layers.Conv2D(self.hidden_dims[-1], 3, padding="same")(x)
        x = self._residual_stack(x, "encoder")
        z_e = layers.Conv2D(self.embedding_dim, 1, name="pre_quantization")(x)
        return keras.Model(inputs, z_e, name="encoder")

    def _build_decoder(self):
        inputs = keras.Input(shape=(*self.grid_shape, self.embedding_dim))
        x = layers.Conv2D(self.hidden_dims[-1], 3, padding="same")(inputs)
        x = self._residual_stack(x, "decoder")
        for filters in reversed(self.hidden_dims):
            x = layers.Conv2D(
                4 * filters, 3, padding="same", activation="relu"
            )(x)
            x = DepthToSpace(2)(x)
        outputs = layers.Conv2D(self.input_shape_[-1], 3, padding="same")(x)
        return keras.Model(inputs, outputs, name="decoder")

    # ------------------------------------------------------------------
    # Training.

    def compute_loss_terms(self, x, training=False):
        self.advance_step(training)
        x = ops.cast(x, "float32")
        z_e = self.encoder(x, training=training)
        vq = self.quantizer(z_e, training=training, return_encodings=True)
        x_hat = ops.cast(
            self.decoder(vq["quantize"], training=training), "float32"
        )
        mse = ops.mean((x_hat - x) ** 2)
        encodings = ops.reshape(vq["encodings"], (-1, self.num_embeddings))
        used = ops.cast(ops.sum(encodings, axis=0) > 0, "float32")
        return {
            "loss": mse / self.data_variance + vq["loss"],
            "reconstruction_loss": mse,
            "vq_loss": vq["loss"],
            "perplexity": vq["perplexity"],
            "codebook_usage": ops.mean(used),
        }

    def call(self, inputs, training=None):
        vq = self.quantizer(
            self.encoder(inputs, training=training), training=False
        )
        reconstruction = self.decoder(vq["quantize"], training=training)
        return {
            "reconstruction": ops.cast(reconstruction, "float32"),
            "encoding_indices": vq["encoding_indices"],
            "perplexity": vq["perplexity"],
        }

    # ------------------------------------------------------------------
    # Input checks.

    def validate_inputs(self, x):
        self.check_image_batch(x, self.input_shape_)

    def _checked_indices(self, indices):
        array = to_numpy(indices)
        indices = np.asarray(indices) if array is None else array
        if indices.ndim != 3 or tuple(indices.shape[1:]) != self.grid_shape:
            raise ValueError(
                f"Expected code indices of shape (batch, {self.grid_shape[0]}, "
                f"{self.grid_shape[1]}), got shape {indices.shape}."
            )
        if not np.issubdtype(indices.dtype, np.integer):
            raise ValueError(
                f"Expected integer code indices, got dtype {indices.dtype}."
            )
        if indices.size and (
            indices.min() < 0 or indices.max() >= self.num_embeddings
        ):
            raise ValueError(
                f"Code indices must be in [0, {self.num_embeddings}); got "
                "values "
                f"in [{indices.min()}, {indices.max()}]."
            )
        return indices.astype("int32")

    # ------------------------------------------------------------------
    # Public verbs: NumPy in, NumPy out, batched.

    def encode(self, x, batch_size=256):
        """Code indices of `x`: int32 array `(n, *grid_shape)`."""
        x = self._checked(x)
        return self._run_batched(
            lambda xb: self.quantizer(self.encoder(xb, training=False))[
                "encoding_indices"
            ],
            [x],
            batch_size,
        )

    def decode_indices(self, indices, batch_size=256):
        """Images (decoder means) of code grids `(n, *grid_shape)`."""
        indices = self._checked_indices(indices)
        return self._run_batched(
            lambda ib: ops.cast(
                self.decoder(self.quantizer.lookup(ib), training=False),
                "float32",
            ),
            [indices],
            batch_size,
        )

    def reconstruct(self, x, batch_size=256):
        """Decodes the quantized encoding of each input."""
        x = self._checked(x)
        return self._run_batched(
            lambda xb: self(xb, training=False)["reconstruction"],
            [x],
            batch_size,
        )

    def sample(self, num_samples, seed=None, temperature=1.0, batch_size=256):
        """Draws code grids from the learned prior and decodes them.

        Args:
            num_samples: int. How many images.
            seed: int or `None`. NumPy draws the prior's noise (see
                `TransformerPrior.sample`), so a seed gives the same images
                on every backend. Defaults to `None`.
            temperature: float. Temperature of the prior's categorical
                distributions. Defaults to `1.0`.
            batch_size: int. Images drawn and decoded at once. Defaults to
                `256`.
        """
        num_samples = check_count("num_samples", num_samples)
        batch_size = check_count("batch_size", batch_size)
        if self.prior is None:
            raise ValueError(
                "This VQVAE has no prior over its codes yet: train one with "
                "model.fit_prior(x_train) after model.fit(...)."
            )
        codes = self.prior.sample(
            num_samples,
            seed=seed,
            temperature=temperature,
            batch_size=batch_size,
        )
        return self.decode_indices(codes, batch_size=batch_size)

    # ------------------------------------------------------------------
    # Serving protocol (tensors in, dicts of tensors out; keras_vae.export).

    def serving_spec(self, score_num_samples=1):
        if self.prior is None:
            raise ValueError(
                "Exporting a VQVAE needs its prior (the `sample` and `score` "
                "signatures use it): train one with model.fit_prior(x_train)."
            )
        return {
            "inputs": ("images", self.input_shape_, "float32"),
            "codes": ("encoding_indices", self.grid_shape, "int32"),
            "sample_noise": ((self.prior.length,), "uniform"),
            "score_noise": None,
            "code_range": (0, self.num_embeddings),
            "valid_inputs": "finite pixels",
        }

    def encode_tensor(self, inputs):
        z_e = self.encoder(ops.cast(inputs, "float32"), training=False)
        return {"encoding_indices": self.quantizer(z_e)["encoding_indices"]}

    def decode_tensor(self, codes):
        quantized = self.quantizer.lookup(codes)
        images = self.decoder(quantized, training=False)
        return {"images": ops.cast(images, "float32")}

    def reconstruct_tensor(self, inputs):
        outputs = self(ops.cast(inputs, "float32"), training=False)
        return {"reconstruction": outputs["reconstruction"]}

    def sample_from_noise(self, noise):
        codes = self.prior.sample_from_uniform(noise)
        return {"samples": self.decode_tensor(codes)["images"]}

    def score_from_noise(self, inputs, noise=None):
        """Code length of each input in nats: `-log p(x | z_q)` under the
        Gaussian decoder (variance `data_variance`) plus `-log p(z_q)`
        under the prior, with `z_q` the input's codes. Deterministic."""
        return {"score": self.negative_log_likelihood_tensor(inputs)}

    def negative_log_likelihood_tensor(self, inputs):
        """`-log p(x | z_q) - log p(z_q)` per example (nats), a tensor."""
        inputs = ops.cast(inputs, "float32")
        outputs = self(inputs, training=False)
        nll_x = -losses.gaussian_log_likelihood(
            inputs, outputs["reconstruction"], math.log(self.data_variance)
        )
        log_prior = ops.sum(
            self.prior.log_prob_per_code(outputs["encoding_indices"]), axis=-1
        )
        return nll_x - log_prior

    # ------------------------------------------------------------------
    # The prior.

    def set_prior(self, prior):
        """Attaches a `TransformerPrior` (or its config) over this grid."""
        if isinstance(prior, dict):
            prior = keras.saving.deserialize_keras_object(prior)
        if not isinstance(prior, TransformerPrior):
            raise TypeError(
                "`prior` must be a TransformerPrior, got "
                f"{type(prior).__name__}."
            )
        if (
            tuple(prior.grid_shape) != self.grid_shape
            or prior.num_embeddings != self.num_embeddings
        ):
            raise ValueError(
                f"The prior models a {prior.grid_shape} grid of "
                f"{prior.num_embeddings} codes; this VQVAE has a "
                f"{self.grid_shape} grid of {self.num_embeddings} codes."
            )
        # A built Keras layer locks its list of sub-layers: attach the prior
        # (replacing any previous one, so its weights leave the model) with
        # the tracker unlocked, as `Layer._untrack_variable` does.
        tracker = self._tracker
        was_locked = tracker.locked
        tracker.unlock()
        try:
            if self.prior is not None and self.prior is not prior:
                tracker.untrack(self.prior)
            self.prior = prior
        finally:
            if was_locked:
                tracker.lock()

    def fit_prior(
        self,
        x,
        validation_data=None,
        prior=None,
        optimizer=None,
        epochs=10,
        batch_size=128,
        **fit_kwargs,
    ):
        """Trains the prior with `fit` on the codes of the images `x`.

        Creates a default `TransformerPrior` if the model has none (or uses
        `prior`), compiles it with `optimizer` if it is not compiled yet,
        and fits it on `encode(x)`.

        Args:
            x: training images, `(n, *input_shape)`.
            validation_data: optional images (array or `(x_val,)` tuple)
                whose codes validate the prior.
            prior: optional `TransformerPrior` to attach and train.
            optimizer: optimizer of the prior. Defaults to Adam, `3e-4`.
            epochs, batch_size, **fit_kwargs: passed to the prior's `fit`.

        Returns:
            The prior's `History`; its loss is nats per code, and
            `bits_per_code` the same in bits.
        """
        if prior is not None:
            self.set_prior(prior)
        elif self.prior is None:
            self.set_prior(
                TransformerPrior(
                    self.grid_shape, self.num_embeddings, seed=self.seed
                )
            )
        codes = self.encode(x)
        if validation_data is not None:
            if isinstance(validation_data, (tuple, list)):
                validation_data = validation_data[0]
            validation_data = (self.encode(validation_data),)
        if not self.prior.compiled:
            self.prior.compile(
                optimizer=optimizer or keras.optimizers.Adam(3e-4)
            )
        return self.prior.fit(
            codes,
            validation_data=validation_data,
            epochs=epochs,
            batch_size=batch_size,
            **fit_kwargs,
        )

    def _without_prior(self, variables):
        prior = getattr(self, "prior", None)
        if prior is None:
            return variables
        excluded = {id(v) for v in prior.variables}
        return [v for v in variables if id(v) not in excluded]

    # The prior is trained by its own `fit` (see `fit_prior`), never by the
    # VQ-VAE's optimizer: its weights are left out of this model's trainable
    # state on every backend.
    @property
    def trainable_weights(self):
        return self._without_prior(super().trainable_weights)

    @property
    def trainable_variables(self):
        return self._without_prior(super().trainable_variables)

    def get_config(self):
        prior = self.prior
        return {
            **super().get_config(),
            "input_shape": self.input_shape_,
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "hidden_dims": self.hidden_dims,
            "num_residual_blocks": self.num_residual_blocks,
            "residual_hidden_dim": self.residual_hidden_dim,
            "commitment_cost": self.commitment_cost,
            "use_ema": self.use_ema,
            "decay": self.decay,
            "dead_code_threshold": self.dead_code_threshold,
            "data_variance": self.data_variance,
            "prior": None
            if prior is None
            else keras.saving.serialize_keras_object(prior),
            "seed": self.seed,
        }
