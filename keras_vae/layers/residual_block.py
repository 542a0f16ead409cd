import keras
from keras import layers


@keras.saving.register_keras_serializable(package="keras_vae")
class ResidualBlock(keras.layers.Layer):
    """Pre-activation residual block of the VQ-VAE's encoder and decoder.

    Computes `x + conv1x1(relu(conv3x3(relu(x))))`, as in the residual
    stacks of van den Oord et al. (2017) and Sonnet's VQ-VAE example. The
    output has the input's shape; channels-last images.

    Args:
        hidden_dim: int. Channels of the inner 3x3 convolution. Defaults to
            `32`.
        **kwargs: Base layer keyword arguments.

    Example:

    >>> import numpy as np
    >>> block = ResidualBlock(hidden_dim=8)
    >>> tuple(block(np.zeros((2, 7, 7, 16), "float32")).shape)
    (2, 7, 7, 16)
    """

    def __init__(self, hidden_dim=32, **kwargs):
        super().__init__(**kwargs)
        if int(hidden_dim) < 1:
            raise ValueError(f"`hidden_dim` must be >= 1, got {hidden_dim}.")
        self.hidden_dim = int(hidden_dim)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                "ResidualBlock expects (batch, height, width, channels), got "
                f"{input_shape}."
            )
        channels = input_shape[-1]
        self.conv_hidden = layers.Conv2D(
            self.hidden_dim,
            3,
            padding="same",
            dtype=self.dtype_policy,
            name="conv_hidden",
        )
        self.conv_out = layers.Conv2D(
            channels, 1, dtype=self.dtype_policy, name="conv_out"
        )
        self.conv_hidden.build(input_shape)
        self.conv_out.build(tuple(input_shape[:-1]) + (self.hidden_dim,))

    def call(self, inputs):
        x = self.conv_hidden(keras.activations.relu(inputs))
        return inputs + self.conv_out(keras.activations.relu(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "hidden_dim": self.hidden_dim}
