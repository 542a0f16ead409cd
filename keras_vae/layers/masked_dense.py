import keras
import numpy as np
from keras import ops


def _degrees(values, name):
    degrees = np.asarray(values, dtype="int64")
    if degrees.ndim != 1 or degrees.size == 0 or degrees.min() < 0:
        raise ValueError(f"`{name}` must be a non-empty list of ints >= 0, got {values!r}.")
    return [int(d) for d in degrees]


@keras.saving.register_keras_serializable(package="keras_vae")
class MaskedDense(keras.layers.Layer):
    """A dense layer with a fixed autoregressive mask (MADE, Germain et al. 2015).

    Each input unit and each output unit carries a degree (an int). Output
    `j` sees input `i` only if `output_degrees[j] >= input_degrees[i]`
    (hidden layers) or `output_degrees[j] > input_degrees[i]` with
    `strict=True` (the output layer). With the inputs numbered by their
    position in an order `1..D`, stacking such layers gives an
    autoregressive network: output `i` depends on the inputs before `i` in
    the order only. `InverseAutoregressiveFlow` builds its MADE networks
    from these layers.

    The mask is a constant built from the degrees, not a weight: the
    degrees are in `get_config`, so a `.keras` file rebuilds the same mask,
    and the kernel entries it zeroes receive no gradient.

    Args:
        input_degrees: list of ints `>= 0`, one per input unit.
        output_degrees: list of ints `>= 0`, one per output unit (the
            number of units).
        strict: bool. Use `>` rather than `>=` between degrees. Defaults to
            `False`.
        activation: activation name or callable. Defaults to `None`.
        use_bias: bool. Defaults to `True`.
        kernel_initializer: Defaults to `"glorot_uniform"`.
        bias_initializer: Defaults to `"zeros"`.
        **kwargs: Base layer keyword arguments.

    Example:

    >>> import numpy as np
    >>> layer = MaskedDense([1, 2, 3], [1, 2, 3], strict=True)
    >>> layer.mask.astype(int)  # output j sees inputs with a lower degree
    array([[0, 1, 1],
           [0, 0, 1],
           [0, 0, 0]])
    >>> tuple(layer(np.ones((4, 3), "float32")).shape)
    (4, 3)
    """

    def __init__(
        self,
        input_degrees,
        output_degrees,
        strict=False,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_degrees = _degrees(input_degrees, "input_degrees")
        self.output_degrees = _degrees(output_degrees, "output_degrees")
        self.units = len(self.output_degrees)
        self.strict = bool(strict)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        inputs = np.asarray(self.input_degrees)[:, None]
        outputs = np.asarray(self.output_degrees)[None, :]
        self.mask = (outputs > inputs) if self.strict else (outputs >= inputs)
        self.mask = self.mask.astype("float32")

    def build(self, input_shape):
        if input_shape[-1] != len(self.input_degrees):
            raise ValueError(
                f"MaskedDense has {len(self.input_degrees)} input degrees but "
                f"received inputs with {input_shape[-1]} features (shape {input_shape})."
            )
        self.kernel = self.add_weight(
            shape=(len(self.input_degrees), self.units),
            initializer=self.kernel_initializer,
            name="kernel",
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=(self.units,), initializer=self.bias_initializer, name="bias"
            )

    def call(self, inputs):
        kernel = ops.cast(self.kernel, self.compute_dtype)
        kernel = kernel * ops.convert_to_tensor(self.mask, dtype=self.compute_dtype)
        outputs = ops.matmul(inputs, kernel)
        if self.bias is not None:
            outputs = outputs + ops.cast(self.bias, self.compute_dtype)
        return self.activation(outputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {
            **super().get_config(),
            "input_degrees": self.input_degrees,
            "output_degrees": self.output_degrees,
            "strict": self.strict,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
