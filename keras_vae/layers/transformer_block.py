import keras
from keras import layers


@keras.saving.register_keras_serializable(package="keras_vae")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm Transformer block with causal self-attention (GPT-2 style).

    `x + attention(norm(x))` then `x + mlp(norm(x))`; position `t` attends
    to positions `<= t` only, so a stack of blocks is autoregressive.

    Args:
        num_heads: int. Attention heads. Defaults to `4`.
        mlp_dim: int. Hidden units of the feed-forward part. Defaults to
            `256`.
        dropout: float. Dropout of the attention and MLP outputs (training
            only). Defaults to `0.0`.
        seed: int or `None`. Seed of the dropout layers.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        inputs: float tensor `(batch, length, dim)`.
        training: bool. Applies the dropouts.
        mask: optional bool tensor `(batch, length)`, `False` at padding
            (e.g. from `Embedding(mask_zero=True)`, passed on by Keras): no
            position attends to a padded one. The mask passes on unchanged
            to the next layer.

    Example:

    >>> import numpy as np
    >>> block = TransformerBlock(num_heads=2, mlp_dim=32)
    >>> tuple(block(np.zeros((2, 5, 16), "float32")).shape)
    (2, 5, 16)
    """

    def __init__(
        self, num_heads=4, mlp_dim=256, dropout=0.0, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.dropout = float(dropout)
        self.seed = seed
        if self.num_heads < 1 or self.mlp_dim < 1:
            raise ValueError("`num_heads` and `mlp_dim` must be positive.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), got {dropout}.")

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "TransformerBlock expects (batch, length, dim), got "
                f"{input_shape}."
            )
        dim = input_shape[-1]
        if dim % self.num_heads:
            raise ValueError(
                f"The model dimension {dim} must be divisible by num_heads="
                f"{self.num_heads}."
            )
        # Sublayers follow this layer's dtype policy (mixed precision).
        policy = self.dtype_policy
        self.attention_norm = layers.LayerNormalization(
            epsilon=1e-5, dtype=policy, name="attention_norm"
        )
        self.attention = layers.MultiHeadAttention(
            self.num_heads,
            dim // self.num_heads,
            dropout=0.0,
            dtype=policy,
            name="attention",
        )
        self.mlp_norm = layers.LayerNormalization(
            epsilon=1e-5, dtype=policy, name="mlp_norm"
        )
        self.mlp_hidden = layers.Dense(
            self.mlp_dim, activation="gelu", dtype=policy, name="mlp_hidden"
        )
        self.mlp_out = layers.Dense(dim, dtype=policy, name="mlp_out")
        self.attention_dropout = layers.Dropout(
            self.dropout, seed=self.seed, dtype=policy
        )
        mlp_seed = None if self.seed is None else self.seed + 1
        self.mlp_dropout = layers.Dropout(
            self.dropout, seed=mlp_seed, dtype=policy
        )
        self.attention_norm.build(input_shape)
        self.attention.build(input_shape, input_shape)
        self.mlp_norm.build(input_shape)
        self.mlp_hidden.build(input_shape)
        self.mlp_out.build(tuple(input_shape[:-1]) + (self.mlp_dim,))

    def call(self, inputs, training=False, mask=None):
        x = self.attention_norm(inputs)
        x = self.attention(
            x, x, value_mask=mask, use_causal_mask=True, training=training
        )
        x = inputs + self.attention_dropout(x, training=training)
        y = self.mlp_out(self.mlp_hidden(self.mlp_norm(x)))
        return x + self.mlp_dropout(y, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "dropout": self.dropout,
            "seed": self.seed,
        }
