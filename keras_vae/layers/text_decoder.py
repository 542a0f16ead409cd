import keras
from keras import layers, ops

from keras_vae import losses


@keras.saving.register_keras_serializable(package="keras_vae")
class TextDecoder(keras.layers.Layer):
    """LSTM decoder of a text VAE with the latent fed at every step.

    Follows Bowman et al. (2016) and He et al. (2019): the latent `z` sets
    the initial LSTM state (`c0 = W z + b`, `h0 = tanh(c0)`) and is
    concatenated to the word embedding at every time step, so the decoder
    cannot forget it. With `latent_dim=0` it is a plain LSTM language
    model.

    Teacher forcing: for token ids `x = <bos> w1 .. wn <eos> <pad>..` of
    shape `(batch, length)`, the decoder reads `x[:, :-1]` and scores
    `x[:, 1:]`. It returns `log p(x[:, t+1] | x[:, :t+1], z)` of shape
    `(batch, length - 1)`, with zeros at padded targets, so that
    `sum(axis=1)` is the log-likelihood of each sentence whatever the
    padding.

    Args:
        vocabulary_size: int. Number of token ids.
        embedding_dim: int. Word embedding size. Defaults to `256`.
        hidden_dim: int. LSTM units. Defaults to `256`.
        latent_dim: int. Size of `z`; `0` for a language model. Defaults
            to `32`.
        word_dropout: float. In training, each input word (not `<bos>`) is
            replaced by `<unk>` with this probability (Bowman et al. 2016,
            section 3.2): the decoder must rely on `z` more. Defaults to
            `0.0`.
        embedding_dropout: float. Dropout on the input embeddings.
            Defaults to `0.0`.
        output_dropout: float. Dropout on the LSTM outputs before the
            softmax. Defaults to `0.0`.
        tie_embeddings: bool. Use the word embedding matrix as the softmax
            weights (`logits = h E^T + b`; Press & Wolf 2017, Inan et al.
            2017): `vocabulary_size * hidden_dim` fewer parameters and
            usually a lower perplexity. Needs `embedding_dim ==
            hidden_dim`. Defaults to `False`.
        pad_id: int. Id of `<pad>`. Defaults to `0`.
        unk_id: int. Id of `<unk>`. Defaults to `3`.
        seed: int or `None`. Seed of the dropouts (`seed`, `seed + 1`) and
            the word dropout (`seed + 2`). Defaults to `None`.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: int token ids `(batch, length)`, or a list
            `[token_ids, z]` with `z` of shape `(batch, latent_dim)` when
            `latent_dim > 0`.
        training: bool. Applies the dropouts.

    Example:

    >>> import numpy as np
    >>> decoder = TextDecoder(10, embedding_dim=4, hidden_dim=8, latent_dim=2)
    >>> ids = np.array([[1, 5, 6, 2], [1, 7, 2, 0]], "int32")
    >>> tuple(decoder([ids, np.zeros((2, 2), "float32")]).shape)
    (2, 3)
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim=256,
        hidden_dim=256,
        latent_dim=32,
        word_dropout=0.0,
        embedding_dropout=0.0,
        output_dropout=0.0,
        tie_embeddings=False,
        pad_id=0,
        unk_id=3,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.hidden_dim = int(hidden_dim)
        self.latent_dim = int(latent_dim)
        self.word_dropout = float(word_dropout)
        self.embedding_dropout = float(embedding_dropout)
        self.output_dropout = float(output_dropout)
        self.tie_embeddings = bool(tie_embeddings)
        self.pad_id = int(pad_id)
        self.unk_id = int(unk_id)
        self.seed = seed
        for name in ("word_dropout", "embedding_dropout", "output_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"`{name}` must be in [0, 1), got {getattr(self, name)}."
                )
        if min(self.vocabulary_size, self.embedding_dim, self.hidden_dim) < 1:
            raise ValueError(
                "`vocabulary_size`, `embedding_dim` and `hidden_dim` must be "
                "positive."
            )
        if self.latent_dim < 0:
            raise ValueError(f"`latent_dim` must be >= 0, got {latent_dim}.")
        if self.tie_embeddings and self.embedding_dim != self.hidden_dim:
            raise ValueError(
                "`tie_embeddings=True` needs `embedding_dim == hidden_dim`; got "
                f"embedding_dim={self.embedding_dim}, hidden_dim={self.hidden_dim}."
            )
        # Sublayers follow this layer's dtype policy (mixed precision).
        policy = self.dtype_policy
        self.embedding = layers.Embedding(
            self.vocabulary_size, self.embedding_dim, dtype=policy, name="embedding"
        )
        self.input_dropout_layer = layers.Dropout(
            self.embedding_dropout, seed=seed, dtype=policy, name="embedding_dropout"
        )
        self.lstm = layers.LSTM(
            self.hidden_dim, return_sequences=True, dtype=policy, name="lstm"
        )
        if policy.variable_dtype != "float32":
            # jaxlib has no float16 QR on CPU: the orthogonal recurrent
            # kernel is drawn in float32 (the same draw), then cast.
            cell = self.lstm.cell
            cell.recurrent_initializer = _DrawnInFloat32(cell.recurrent_initializer)
        self.output_dropout_layer = layers.Dropout(
            self.output_dropout,
            seed=None if seed is None else seed + 1,
            dtype=policy,
            name="output_dropout",
        )
        self.output_layer = None
        if not self.tie_embeddings:
            self.output_layer = layers.Dense(
                self.vocabulary_size, dtype=policy, name="logits"
            )
        self.initial_cell = None
        if self.latent_dim:
            self.initial_cell = layers.Dense(
                self.hidden_dim, dtype=policy, name="initial_cell"
            )
        # seed, seed + 1 and seed + 2: one seed for all three would give
        # correlated streams (the same counter-based bits on every backend).
        self.seed_generator = keras.random.SeedGenerator(None if seed is None else seed + 2)

    def build(self, input_shape=None):
        if self.built:
            return
        self.embedding.build((None, None))
        self.lstm.build((None, None, self.embedding_dim + self.latent_dim))
        if self.tie_embeddings:
            self.output_bias = self.add_weight(
                shape=(self.vocabulary_size,), initializer="zeros", name="output_bias"
            )
        else:
            self.output_layer.build((None, self.hidden_dim))
        if self.initial_cell is not None:
            self.initial_cell.build((None, self.latent_dim))
        self.built = True

    def logits(self, hidden):
        """Float32 next-word logits of LSTM outputs `hidden`."""
        if self.tie_embeddings:
            weights = ops.cast(self.embedding.embeddings, hidden.dtype)
            logits = ops.matmul(hidden, ops.transpose(weights))
            return ops.cast(logits, "float32") + ops.cast(self.output_bias, "float32")
        return ops.cast(self.output_layer(hidden), "float32")

    def _split_inputs(self, inputs):
        if self.latent_dim:
            if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
                raise ValueError(
                    "TextDecoder with latent_dim > 0 takes [token_ids, z]."
                )
            return inputs[0], inputs[1]
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        return inputs, None

    def initial_state(self, z, batch_size):
        """The LSTM state `[h0, c0]` for latents `z` (zeros without `z`)."""
        if z is None:
            # In the LSTM's dtype, so that a decoding loop's state keeps
            # one dtype under mixed precision.
            zeros = ops.zeros((batch_size, self.hidden_dim), dtype=self.compute_dtype)
            return [zeros, zeros]
        cell = self.initial_cell(z)
        return [ops.tanh(cell), cell]

    def _with_latent(self, embedded, z):
        if z is None:
            return embedded
        z = ops.cast(z, embedded.dtype)
        if len(embedded.shape) == 3:
            z = ops.broadcast_to(
                z[:, None, :],
                (
                    ops.shape(embedded)[0],
                    ops.shape(embedded)[1],
                    self.latent_dim,
                ),
            )
        return ops.concatenate([embedded, z], axis=-1)

    def call(self, inputs, training=None):
        token_ids, z = self._split_inputs(inputs)
        token_ids = ops.cast(token_ids, "int32")
        inputs_ids = token_ids[:, :-1]
        targets = token_ids[:, 1:]
        if training and self.word_dropout > 0:
            drop = (
                keras.random.uniform(
                    ops.shape(inputs_ids), seed=self.seed_generator
                )
                < self.word_dropout
            )
            # Position 0 is <bos>: keep it.
            drop = ops.logical_and(
                drop, ops.arange(ops.shape(inputs_ids)[1])[None, :] > 0
            )
            inputs_ids = ops.where(drop, self.unk_id, inputs_ids)
        embedded = self.embedding(inputs_ids)
        embedded = self.input_dropout_layer(embedded, training=training)
        state = self.initial_state(z, ops.shape(token_ids)[0])
        hidden = self.lstm(
            self._with_latent(embedded, z),
            initial_state=state,
            training=training,
        )
        hidden = self.output_dropout_layer(hidden, training=training)
        target_log_probs = losses.categorical_log_likelihood(targets, self.logits(hidden))
        mask = ops.cast(ops.not_equal(targets, self.pad_id), "float32")
        return target_log_probs * mask

    def step(self, token_ids, state, z=None):
        """One decoding step: next-token log-probabilities and new state.

        Args:
            token_ids: int tensor `(batch,)`, the previous tokens.
            state: list `[h, c]` from `initial_state` or the last step.
            z: latents `(batch, latent_dim)`, or `None` without latent.

        Returns:
            `(log_probs, state)`: float32 `(batch, vocabulary_size)` and the
            new `[h, c]`.
        """
        embedded = self.embedding(ops.cast(token_ids, "int32"))
        hidden, state = self.lstm.cell(
            self._with_latent(embedded, z), state, training=False
        )
        logits = self.logits(hidden)
        return ops.log_softmax(logits, axis=-1), list(state)

    def compute_output_spec(self, inputs, training=None):
        # Log-likelihoods are float32 under every dtype policy (`logits`).
        shapes = keras.tree.map_structure(lambda x: tuple(x.shape), inputs)
        return keras.KerasTensor(self.compute_output_shape(shapes), dtype="float32")

    def compute_output_shape(self, input_shape):
        shape = input_shape[0] if self.latent_dim else input_shape
        if (
            isinstance(shape, list)
            and shape
            and isinstance(shape[0], (list, tuple))
        ):
            shape = shape[0]
        length = shape[1]
        return (shape[0], None if length is None else length - 1)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "latent_dim": self.latent_dim,
            "word_dropout": self.word_dropout,
            "embedding_dropout": self.embedding_dropout,
            "output_dropout": self.output_dropout,
            "tie_embeddings": self.tie_embeddings,
            "pad_id": self.pad_id,
            "unk_id": self.unk_id,
            "seed": self.seed,
        }


class _DrawnInFloat32:
    """An initializer that draws in float32 and casts to the variable dtype."""

    def __init__(self, initializer):
        self.initializer = initializer

    def __call__(self, shape, dtype=None):
        return ops.cast(self.initializer(shape, dtype="float32"), dtype)
