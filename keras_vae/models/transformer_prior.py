import math

import keras
import numpy as np
from keras import layers, ops

from keras_vae import losses
from keras_vae.layers.transformer_block import TransformerBlock
from keras_vae.models.generative_model import GenerativeModel, check_count
from keras_vae.training import fori_loop


@keras.saving.register_keras_serializable(package="keras_vae")
class TransformerPrior(GenerativeModel):
    """Autoregressive prior over a grid of discrete codes (a small GPT).

    The codes of a `(height, width)` grid are read in raster order, and
    `p(c) = prod_t p(c_t | c_<t)` is modelled by a causal Transformer: the
    token at position `t` is predicted from a start token and the codes
    before it. This is the second stage of a VQ-VAE (van den Oord et al.
    2017 use a PixelCNN; a causal Transformer has no blind spot), trained
    with `fit` on the code indices of the training set. The loss is the
    negative log-likelihood in nats per code; `bits_per_code` reports it in
    bits.

    Args:
        grid_shape: tuple `(height, width)` of the code grid, e.g. `(7, 7)`.
        num_embeddings: int. Number of codes `K`; codes are in `[0, K)`.
        embed_dim: int. Width of the Transformer. Defaults to `64`.
        num_layers: int. Transformer blocks. Defaults to `2`.
        num_heads: int. Attention heads per block. Defaults to `4`.
        mlp_dim: int or `None`. Hidden units of each block's MLP. Defaults
            to `4 * embed_dim`.
        dropout: float. Dropout in training. Defaults to `0.0`.
        seed: int or `None`. Seed of the dropout layers.
        **kwargs: Base model keyword arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> prior = TransformerPrior((3, 3), num_embeddings=8, embed_dim=16,
    ...                          num_layers=1, num_heads=2)
    >>> prior.compile(optimizer="adam")
    >>> codes = np.random.default_rng(0).integers(0, 8, (64, 3, 3))
    >>> history = prior.fit(codes, epochs=1, batch_size=32, verbose=0)
    >>> sorted(history.history)
    ['bits_per_code', 'loss']
    >>> prior.sample(4, seed=0).shape
    (4, 3, 3)
    """

    loss_term_names = ("loss", "bits_per_code")

    def __init__(
        self,
        grid_shape,
        num_embeddings,
        embed_dim=64,
        num_layers=2,
        num_heads=4,
        mlp_dim=None,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.grid_shape = tuple(int(d) for d in grid_shape)
        self.num_embeddings = int(num_embeddings)
        self.embed_dim = int(embed_dim)
        self.num_layers = int(num_layers)
        self.num_heads = int(num_heads)
        self.mlp_dim = None if mlp_dim is None else int(mlp_dim)
        self.dropout = float(dropout)
        self.seed = seed
        if len(self.grid_shape) != 2 or min(self.grid_shape) < 1:
            raise ValueError(
                f"`grid_shape` must be (height, width), got {grid_shape}."
            )
        if self.num_embeddings < 1 or self.embed_dim < 1 or self.num_layers < 1:
            raise ValueError(
                "`num_embeddings`, `embed_dim` and `num_layers` must be "
                "positive."
            )
        self.length = math.prod(self.grid_shape)

        # Token K is the start token.
        self.token_embedding = layers.Embedding(
            self.num_embeddings + 1, self.embed_dim, name="token_embedding"
        )
        self.token_embedding.build((None, self.length))
        self.position_embedding = self.add_weight(
            shape=(self.length, self.embed_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="position_embedding",
        )
        hidden_shape = (None, self.length, self.embed_dim)
        self.blocks = []
        for i in range(self.num_layers):
            block = TransformerBlock(
                num_heads=self.num_heads,
                mlp_dim=self.mlp_dim or 4 * self.embed_dim,
                dropout=self.dropout,
                seed=None if seed is None else seed + 2 * i,
                name=f"block_{i}",
            )
            block.build(hidden_shape)
            self.blocks.append(block)
        self.final_norm = layers.LayerNormalization(
            epsilon=1e-5, name="final_norm"
        )
        self.final_norm.build(hidden_shape)
        self.head = layers.Dense(self.num_embeddings, name="head")
        self.head.build(hidden_shape)
        self.built = True

    # ------------------------------------------------------------------

    def _logits(self, inputs, training=False):
        """Logits `(batch, t, K)` of the next code from shifted `inputs`."""
        length = ops.shape(inputs)[1]
        x = self.token_embedding(inputs)
        x = x + ops.cast(self.position_embedding[None, :length], x.dtype)
        for block in self.blocks:
            x = block(x, training=training)
        return ops.cast(self.head(self.final_norm(x)), "float32")

    def _shifted(self, codes):
        flat = ops.reshape(ops.cast(codes, "int32"), (-1, self.length))
        start = ops.full_like(flat[:, :1], self.num_embeddings)
        return flat, ops.concatenate([start, flat[:, :-1]], axis=1)

    def log_prob_per_code(self, codes, training=False):
        """`log p(c_t | c_<t)` in nats, shape `(batch, length)` (tensor)."""
        flat, inputs = self._shifted(codes)
        return losses.categorical_log_likelihood(flat, self._logits(inputs, training))

    def compute_loss_terms(self, x, training=False):
        self.advance_step(training)
        nll = -ops.mean(self.log_prob_per_code(x, training=training))
        return {"loss": nll, "bits_per_code": nll / math.log(2.0)}

    def call(self, inputs, training=None):
        _, shifted = self._shifted(inputs)
        logits = self._logits(shifted, training=bool(training))
        return {
            "logits": ops.reshape(
                logits, (-1, *self.grid_shape, self.num_embeddings)
            )
        }

    # ------------------------------------------------------------------

    def validate_inputs(self, x):
        x = np.asarray(x)
        expected = self.grid_shape
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"Expected code indices of shape (batch, {expected[0]}, "
                f"{expected[1]}), got shape {x.shape}."
            )
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(
                f"Expected integer code indices, got dtype {x.dtype}."
            )
        if x.size and (x.min() < 0 or x.max() >= self.num_embeddings):
            raise ValueError(
                f"Code indices must be in [0, {self.num_embeddings}); got "
                "values "
                f"in [{x.min()}, {x.max()}]."
            )

    def log_prob(self, codes, batch_size=256):
        """`log p(codes)` in nats per example (NumPy, shape `(n,)`)."""
        codes = self._checked(codes)
        return self._run_batched(
            lambda c: ops.sum(self.log_prob_per_code(c), axis=-1),
            [codes.astype("int32")],
            batch_size,
        )

    def bits_per_code(self, codes, batch_size=256):
        """Mean negative log-likelihood of `codes` in bits per code."""
        total = self.log_prob(codes, batch_size=batch_size)
        return float(-np.mean(total) / self.length / math.log(2.0))

    def sample(self, num_samples, seed=None, temperature=1.0, batch_size=256):
        """Draws `num_samples` code grids, one code at a time (NumPy ints).

        Args:
            num_samples: int. How many grids.
            seed: int or `None`. NumPy draws the uniform noise that picks
                each code (`np.random.default_rng(seed)`), so a seed gives
                the same codes on every backend (barring a near-tie in the
                prior's probabilities). Defaults to `None`.
            temperature: float. Divides the logits; below 1 sharpens.
            batch_size: int. Grids drawn at once.

        Returns:
            int32 array of shape `(num_samples, height, width)`.
        """
        num_samples = check_count("num_samples", num_samples)
        batch_size = check_count("batch_size", batch_size)
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0, got {temperature}.")
        rng = np.random.default_rng(seed)
        grids = []
        for start in range(0, num_samples, batch_size):
            n = min(batch_size, num_samples - start)
            noise = rng.random((n, self.length), dtype="float32")
            codes = self.sample_from_uniform(ops.convert_to_tensor(noise), temperature=temperature)
            grids.append(ops.convert_to_numpy(codes).astype("int32"))
        return np.concatenate(grids, axis=0)

    def sample_from_uniform(self, noise, temperature=1.0):
        """Draws code grids given uniform noise, with `keras.ops` only.

        Code `t` is the inverse CDF of `p(c_t | c_<t)` at `noise[:, t]`, so
        the same noise gives the same codes; a loop over the positions
        (`keras_vae.training.fori_loop`: `ops.fori_loop`, one graph on
        TensorFlow) runs the Transformer once per code. The exported
        `sample` signature calls this with seeded stateless noise.

        Args:
            noise: float tensor `(batch, height * width)` in `[0, 1)`.
            temperature: float. Divides the logits.

        Returns:
            int32 tensor `(batch, height, width)`.
        """
        noise = ops.cast(noise, "float32")
        positions = ops.arange(self.length, dtype="int32")
        last = self.num_embeddings - 1

        def draw(t, codes):
            _, inputs = self._shifted(codes)
            logits = ops.take(self._logits(inputs), t, axis=1) / temperature
            cdf = ops.cumsum(ops.softmax(logits, axis=-1), axis=-1)
            u = ops.take(noise, t, axis=1)
            drawn = ops.sum(ops.cast(cdf < u[:, None], "int32"), axis=-1)
            drawn = ops.minimum(drawn, last)
            here = ops.cast(ops.equal(positions, t), "int32")
            return codes + here[None, :] * drawn[:, None]

        codes = ops.zeros_like(noise, dtype="int32")
        codes = fori_loop(0, self.length, draw, codes)
        return ops.reshape(codes, (-1, *self.grid_shape))

    def get_config(self):
        return {
            **super().get_config(),
            "grid_shape": self.grid_shape,
            "num_embeddings": self.num_embeddings,
            "embed_dim": self.embed_dim,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout": self.dropout,
            "seed": self.seed,
        }
