import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_vae")
class VectorQuantizer(keras.layers.Layer):
    """Vector quantization bottleneck of the VQ-VAE (van den Oord et al. 2017).

    Each `embedding_dim`-vector `z_e` of the input (the last axis) is
    replaced by its nearest entry of a codebook `e` of `num_embeddings`
    vectors (Euclidean distance). With inputs of shape `(16, 7, 7, 32)` and
    a codebook of 128 codes, `quantize` has shape `(16, 7, 7, 32)` and
    `encoding_indices` shape `(16, 7, 7)`, values in `[0, 128)`.

    Gradients pass the lookup unchanged (the straight-through estimator:
    `quantize = z_e + stop_gradient(e_k - z_e)`), and the layer returns the
    loss of equation 3 of the paper:

    - codebook learned by the loss (`use_ema=False`):
      `||sg[z_e] - e||^2 + commitment_cost * ||z_e - sg[e]||^2`;
    - codebook learned by exponential moving averages (`use_ema=True`,
      appendix A.1): `commitment_cost * ||z_e - sg[e]||^2` only. Each
      training call updates, with `decay`, the moving averages of the
      number of vectors assigned to each code, `N_k`, and of their sum,
      `m_k`; the counts are Laplace-smoothed,
      `N_k <- (N_k + epsilon) / (N + K * epsilon) * N`, and the code becomes
      `e_k = m_k / N_k`. As in Sonnet's `VectorQuantizerEMA`, the averages
      start at zero and are debiased (divided by `1 - decay^t`).

    Dead codes: in training, a code whose moving-average count of assigned
    vectors per batch is below `dead_code_threshold` is restarted at an
    encoder output of the batch drawn at random (with the layer's
    `SeedGenerator`), as in Jukebox (Dhariwal et al. 2020). `0` disables it.

    All state (EMA averages, usage counts, the seed) lives in non-trainable
    variables that are assigned only when `training=True`, so it updates
    inside the jit-compiled train step of every backend (JAX included) and
    never in evaluation or inference.

    Args:
        num_embeddings: int. Number of codes `K`.
        embedding_dim: int. Size `D` of each code: the inputs' last axis.
        commitment_cost: float. `beta` of the commitment loss. Defaults to
            `0.25`.
        use_ema: bool. Learn the codebook by moving averages (`True`) or by
            the loss and the optimizer (`False`). Defaults to `True`.
        decay: float. Decay of the moving averages, of the code counts used
            for the dead-code test too. Defaults to `0.99`.
        epsilon: float. Laplace smoothing of the EMA counts. Defaults to
            `1e-5`.
        dead_code_threshold: float. Restart codes assigned fewer vectors per
            batch than this, on moving average. Defaults to `0.0` (off).
        embeddings_initializer: initializer of the codebook. Defaults to
            `"variance_scaling"` with a uniform distribution, like Sonnet.
        seed: int or `None`. Seed of the dead-code restarts and the codebook
            initializer.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: float tensor `(..., embedding_dim)`.
        training: bool. Update the EMA codebook and restart dead codes.
        return_encodings: bool. Also return the one-hot `encodings`.

    Returns:
        A dict with `quantize` (the inputs' shape, straight-through),
        `loss` (scalar), `perplexity` (scalar, `exp` of the entropy of the
        batch's code frequencies), `encoding_indices` (int32, the inputs'
        shape without the last axis) and, if asked, `encodings` (one-hot,
        `(..., num_embeddings)`).

    Example:

    >>> import numpy as np
    >>> vq = VectorQuantizer(num_embeddings=16, embedding_dim=4, seed=0)
    >>> out = vq(np.zeros((2, 3, 3, 4), "float32"))
    >>> tuple(out["quantize"].shape), tuple(out["encoding_indices"].shape)
    ((2, 3, 3, 4), (2, 3, 3))
    """

    def __init__(
        self,
        num_embeddings,
        embedding_dim,
        commitment_cost=0.25,
        use_ema=True,
        decay=0.99,
        epsilon=1e-5,
        dead_code_threshold=0.0,
        embeddings_initializer=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.commitment_cost = float(commitment_cost)
        self.use_ema = bool(use_ema)
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.dead_code_threshold = float(dead_code_threshold)
        self.seed = seed
        if self.num_embeddings < 1 or self.embedding_dim < 1:
            raise ValueError(
                "`num_embeddings` and `embedding_dim` must be positive, got "
                f"{num_embeddings} and {embedding_dim}."
            )
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"`decay` must be in [0, 1), got {decay}.")
        if self.commitment_cost < 0 or self.epsilon < 0:
            raise ValueError("`commitment_cost` and `epsilon` must be >= 0.")
        if self.dead_code_threshold < 0:
            raise ValueError(
                "`dead_code_threshold` must be >= 0, got "
                f"{dead_code_threshold}."
            )
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.VarianceScaling(
                distribution="uniform", seed=seed
            )
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.build((None, self.embedding_dim))

    def build(self, input_shape):
        if self.built:
            return
        k, d = self.num_embeddings, self.embedding_dim
        self.embeddings = self.add_weight(
            shape=(k, d),
            initializer=self.embeddings_initializer,
            trainable=not self.use_ema,
            name="embeddings",
        )
        # Moving-average state, zero-initialized and debiased with `counter`.
        self.ema_cluster_size_hidden = self.add_weight(
            shape=(k,),
            initializer="zeros",
            trainable=False,
            name="ema_cluster_size_hidden",
        )
        self.counter = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="counter"
        )
        if self.use_ema:
            self.ema_dw_hidden = self.add_weight(
                shape=(k, d),
                initializer="zeros",
                trainable=False,
                name="ema_dw_hidden",
            )
        else:
            # The optimizer owns `embeddings` (a JAX step drops assignments
            # to trainable variables), so restarts move codes with an offset.
            self.embeddings_offset = self.add_weight(
                shape=(k, d),
                initializer="zeros",
                trainable=False,
                name="embeddings_offset",
            )
        self.built = True

    # ------------------------------------------------------------------

    @property
    def codebook(self):
        """The `(num_embeddings, embedding_dim)` codes in use."""
        if self.use_ema:
            return ops.convert_to_tensor(self.embeddings)
        return self.embeddings + ops.stop_gradient(self.embeddings_offset)

    def ema_cluster_size(self):
        """Debiased moving average of the code counts (before smoothing)."""
        return self._debias(self.ema_cluster_size_hidden, self.counter)

    def _debias(self, hidden, counter):
        correction = 1.0 - ops.power(self.decay, ops.maximum(counter, 1.0))
        return hidden / correction

    def lookup(self, indices):
        """Codes of integer `indices`: shape `indices.shape + (D,)`."""
        return ops.take(self.codebook, ops.cast(indices, "int32"), axis=0)

    def call(self, inputs, training=False, return_encodings=False):
        inputs = ops.cast(inputs, "float32")
        shape = ops.shape(inputs)
        flat = ops.reshape(inputs, (-1, self.embedding_dim))
        codebook = ops.cast(self.codebook, "float32")
        distances = (
            ops.sum(flat**2, axis=1, keepdims=True)
            - 2.0 * ops.matmul(flat, ops.transpose(codebook))
            + ops.sum(codebook**2, axis=1)[None, :]
        )
        indices = ops.cast(ops.argmin(distances, axis=1), "int32")
        encodings = ops.one_hot(indices, self.num_embeddings, dtype="float32")
        quantized = ops.take(codebook, indices, axis=0)

        e_latent_loss = ops.mean((ops.stop_gradient(quantized) - flat) ** 2)
        loss = self.commitment_cost * e_latent_loss
        if not self.use_ema:
            q_latent_loss = ops.mean((quantized - ops.stop_gradient(flat)) ** 2)
            loss = loss + q_latent_loss

        if training:
            self._update_state(ops.stop_gradient(flat), encodings)

        straight_through = flat + ops.stop_gradient(quantized - flat)
        avg_probs = ops.mean(encodings, axis=0)
        perplexity = ops.exp(-ops.sum(avg_probs * ops.log(avg_probs + 1e-10)))
        outputs = {
            "quantize": ops.reshape(straight_through, shape),
            "loss": loss,
            "perplexity": perplexity,
            "encoding_indices": ops.reshape(indices, shape[:-1]),
        }
        if return_encodings:
            outputs["encodings"] = ops.reshape(
                encodings, tuple(shape[:-1]) + (self.num_embeddings,)
            )
        return outputs

    def _update_state(self, flat, encodings):
        decay = self.decay
        counter = self.counter + 1.0
        counts = ops.sum(encodings, axis=0)
        cluster_hidden = self.ema_cluster_size_hidden - (
            self.ema_cluster_size_hidden - counts
        ) * (1.0 - decay)
        cluster_size = self._debias(cluster_hidden, counter)
        if self.use_ema:
            dw = ops.matmul(ops.transpose(encodings), flat)
            dw_hidden = self.ema_dw_hidden - (self.ema_dw_hidden - dw) * (
                1.0 - decay
            )
            dw_average = self._debias(dw_hidden, counter)
            total = ops.sum(cluster_size)
            smoothed = (
                (cluster_size + self.epsilon)
                / (total + self.num_embeddings * self.epsilon)
                * total
            )
            embeddings = dw_average / smoothed[:, None]

        if self.dead_code_threshold > 0:
            dead = cluster_size < self.dead_code_threshold
            num_vectors = ops.shape(flat)[0]
            picks = keras.random.randint(
                (self.num_embeddings,), 0, num_vectors, seed=self.seed_generator
            )
            candidates = ops.take(flat, picks, axis=0)
            dead_column = dead[:, None]
            # A restarted code counts as used once (at the threshold) so
            # that it gets one more chance before being restarted again.
            restart_size = ops.full_like(cluster_size, self.dead_code_threshold)
            bias = 1.0 - ops.power(decay, counter)
            cluster_hidden = ops.where(
                dead, restart_size * bias, cluster_hidden
            )
            if self.use_ema:
                dw_hidden = ops.where(
                    dead_column,
                    candidates * restart_size[:, None] * bias,
                    dw_hidden,
                )
                embeddings = ops.where(dead_column, candidates, embeddings)
            else:
                embeddings = ops.convert_to_tensor(self.embeddings)
                offset = ops.where(
                    dead_column,
                    candidates - embeddings,
                    ops.convert_to_tensor(self.embeddings_offset),
                )
                self.embeddings_offset.assign(offset)

        self.counter.assign(counter)
        self.ema_cluster_size_hidden.assign(cluster_hidden)
        if self.use_ema:
            self.ema_dw_hidden.assign(dw_hidden)
            self.embeddings.assign(embeddings)

    def compute_output_spec(
        self, inputs, training=False, return_encodings=False
    ):
        shape = tuple(inputs.shape)
        spec = {
            "quantize": keras.KerasTensor(shape, dtype="float32"),
            "loss": keras.KerasTensor((), dtype="float32"),
            "perplexity": keras.KerasTensor((), dtype="float32"),
            "encoding_indices": keras.KerasTensor(shape[:-1], dtype="int32"),
        }
        if return_encodings:
            spec["encodings"] = keras.KerasTensor(
                shape[:-1] + (self.num_embeddings,), dtype="float32"
            )
        return spec

    def get_config(self):
        return {
            **super().get_config(),
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "commitment_cost": self.commitment_cost,
            "use_ema": self.use_ema,
            "decay": self.decay,
            "epsilon": self.epsilon,
            "dead_code_threshold": self.dead_code_threshold,
            "embeddings_initializer": keras.initializers.serialize(
                self.embeddings_initializer
            ),
            "seed": self.seed,
        }
