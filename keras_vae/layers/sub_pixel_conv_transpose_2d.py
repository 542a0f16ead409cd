import keras
import numpy as np
from keras import ops

from keras_vae.layers.depth_to_space import DepthToSpace

# Which tap of the 3-wide transposed kernel feeds each output phase, per
# axis: `_TAPS[phase, a, k] = 1` when low-resolution neighbour `a` (0: the
# one before, 1: the pixel itself) meets kernel index `k` in output pixel
# `2 * m + phase`. Even outputs see `x[m - 1] * w[2] + x[m] * w[0]`, odd
# ones `x[m] * w[1]`.
_TAPS = np.zeros((2, 2, 3), "float32")
_TAPS[0, 0, 2] = _TAPS[0, 1, 0] = _TAPS[1, 1, 1] = 1.0


@keras.saving.register_keras_serializable(package="keras_vae")
class SubPixelConvTranspose2D(keras.layers.Layer):
    """A stride-2 3x3 transposed convolution computed as a sub-pixel one.

    Gives the outputs of `keras.layers.Conv2DTranspose(filters, 3,
    strides=2, padding="same")` with the same weights (a `kernel` of shape
    `(3, 3, filters, input_channels)` and a `bias`), but computes them on the
    low-resolution grid: output pixel `(2i + p, 2j + q)` only sees input
    pixels `i - 1, i` and `j - 1, j`, so one 2x2 convolution to
    `4 * filters` channels (one group per output phase `(p, q)`, its kernel
    assembled from the 3x3 one, with zeros where a phase misses a tap)
    followed by `DepthToSpace(2)` gives every phase at once. That is 16
    multiply-adds per input channel, filter and input pixel, against 36 for
    `UpSampling2D(2)` + `Conv2D(filters, 3)` or a 3x3 sub-pixel convolution,
    and it avoids the transposed convolution's very slow gradient on
    XLA:CPU (JAX). Channels-last only; an input `(batch, h, w, c)` gives
    `(batch, 2h, 2w, filters)`.

    Args:
        filters: int. The number of output channels.
        activation: The activation applied to the outputs (a name or
            callable). Defaults to `None` (linear).
        use_bias: bool. Whether to add a bias per filter. Defaults to
            `True`.
        kernel_initializer: Initializer of the `(3, 3, filters,
            input_channels)` kernel. Defaults to `"glorot_uniform"` (as
            `Conv2DTranspose`).
        bias_initializer: Initializer of the bias. Defaults to `"zeros"`.
        **kwargs: Base layer keyword arguments.

    Example:

    >>> import numpy as np
    >>> layer = SubPixelConvTranspose2D(4, activation="relu")
    >>> y = layer(np.ones((1, 7, 7, 8), "float32"))
    >>> tuple(y.shape), tuple(layer.kernel.shape)
    ((1, 14, 14, 4), (3, 3, 4, 8))
    """

    def __init__(
        self,
        filters,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(filters) < 1:
            raise ValueError(f"`filters` must be a positive int, got {filters}.")
        self.filters = int(filters)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.depth_to_space = DepthToSpace(2, dtype=self.dtype_policy)

    def build(self, input_shape):
        channels = self._checked_shape(input_shape)[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(3, 3, self.filters, channels),
            initializer=self.kernel_initializer,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.filters,), initializer=self.bias_initializer
            )

    def _checked_shape(self, shape):
        if len(shape) != 4 or shape[-1] is None:
            raise ValueError(
                "SubPixelConvTranspose2D expects channels-last images (batch, "
                f"height, width, channels) with known channels; got shape {shape}."
            )
        return shape

    def sub_pixel_kernel(self):
        """The `(2, 2, input_channels, 4 * filters)` kernel of the 2x2
        convolution, output channels ordered `(p, q, filter)` as
        `DepthToSpace` reads them."""
        taps = ops.convert_to_tensor(_TAPS, dtype=self.compute_dtype)
        kernel = ops.cast(self.kernel, self.compute_dtype)
        kernel = ops.einsum("pak,qbl,klfc->abcpqf", taps, taps, kernel)
        return ops.reshape(kernel, (2, 2, kernel.shape[2], 4 * self.filters))

    def call(self, inputs):
        x = ops.pad(inputs, ((0, 0), (1, 0), (1, 0), (0, 0)))
        x = ops.conv(x, self.sub_pixel_kernel(), strides=1, padding="valid")
        if self.use_bias:
            x = x + ops.tile(ops.cast(self.bias, x.dtype), (4,))
        if self.activation is not None:
            x = self.activation(x)
        return self.depth_to_space(x)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = self._checked_shape(input_shape)
        return (
            batch,
            None if height is None else 2 * height,
            None if width is None else 2 * width,
            self.filters,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
