import keras
import numpy as np
from keras import ops

from keras_vae.layers.masked_dense import MaskedDense


def made_degrees(order, hidden_dims):
    """Degrees of the input, hidden and output units of a MADE network.

    Args:
        order: list of ints: the position (`1..D`) of each input dimension
            in the autoregressive order.
        hidden_dims: tuple of ints: units per hidden layer.

    Returns:
        A list: the input degrees (`order`), one array per hidden layer
        (degrees `1..D-1` assigned cyclically; all `0`, context only, when
        `D = 1`) and the output degrees (`order` again: output `i` then sees
        the inputs before `i` only, through `strict` masks).
    """
    dim = len(order)
    degrees = [np.asarray(order)]
    for units in hidden_dims:
        hidden = np.arange(units) % max(1, dim - 1) + 1 if dim > 1 else np.zeros(units)
        degrees.append(hidden.astype("int64"))
    degrees.append(np.asarray(order))
    return degrees


@keras.saving.register_keras_serializable(package="keras_vae")
class InverseAutoregressiveFlow(keras.layers.Layer):
    """Inverse autoregressive flow (Kingma et al. 2016) of `num_steps` steps.

    Step `t` maps `z` to `sigma * z + (1 - sigma) * m`, where
    `[m, s] = MADE_t(z, h)` is an autoregressive network (masked dense
    layers, `MaskedDense`) and `sigma = sigmoid(s + forget_bias)`, the
    numerically stable gated update of the paper's Algorithm 1 (a positive
    `forget_bias` starts each step near the identity). Since `m_i` and `s_i`
    depend on `z_<i` only, the Jacobian of a step is triangular with
    diagonal `sigma`, so `log|det| = sum_i log sigma_i`. The order of the
    dimensions is reversed from one step to the next (by the MADE degrees,
    so `z` keeps its coordinates). A context `h` (the encoder's extra
    output, shape `(batch, context_dim)`) enters the first layer of every
    MADE through a dense projection.

    The log-determinant is computed in float32 whatever the dtype policy.

    Args:
        num_steps: int `>= 1`. Flow steps. Defaults to `2`.
        hidden_dims: tuple of ints. Units of the hidden masked layers of
            each MADE. Defaults to `(256, 256)`.
        forget_bias: float. Added to `s` before the sigmoid. Defaults to
            `1.0`.
        activation: activation of the hidden layers. Defaults to `"elu"`.
        **kwargs: Base layer keyword arguments.

    Call arguments:
        z: tensor of shape `(..., latent_dim)`, e.g. `(batch, latent_dim)`
            or `(k, batch, latent_dim)` for `k` samples of each example.
        context: optional tensor of shape `(batch, context_dim)`,
            broadcast against `z`'s leading axes. A layer built without a
            context takes none, and conversely.

    Returns:
        Tuple `(z, log_det)`, both of the input's shape: the flowed `z`,
        and per dimension `log|d z_i / d z0_i|` summed over the steps, in
        float32 (sum the last axis for `log|det dz/dz0|`; with
        `keras_vae.losses.flow_log_prob` it gives `log q(z|x)`).

    Example:

    >>> import numpy as np
    >>> flow = InverseAutoregressiveFlow(num_steps=2, hidden_dims=(8,))
    >>> z, log_det = flow(np.zeros((4, 3), "float32"), np.ones((4, 5), "float32"))
    >>> tuple(z.shape), tuple(log_det.shape)
    ((4, 3), (4, 3))
    >>> bool(np.all(keras.ops.convert_to_numpy(log_det) < 0))  # sigma < 1 each step
    True
    """

    def __init__(
        self, num_steps=2, hidden_dims=(256, 256), forget_bias=1.0, activation="elu", **kwargs
    ):
        super().__init__(**kwargs)
        self.num_steps = int(num_steps)
        self.hidden_dims = tuple(int(d) for d in hidden_dims)
        self.forget_bias = float(forget_bias)
        self.activation = keras.activations.get(activation)
        if self.num_steps < 1:
            raise ValueError(f"`num_steps` must be >= 1, got {num_steps}.")
        if self.hidden_dims and min(self.hidden_dims) < 1:
            raise ValueError(f"`hidden_dims` must be positive ints, got {hidden_dims}.")

    def build(self, z_shape, context_shape=None):
        dim = z_shape[-1]
        if dim is None:
            raise ValueError(f"The latent size must be known, got inputs of shape {z_shape}.")
        self.latent_dim = int(dim)
        self.context_dim = None if context_shape is None else int(context_shape[-1])
        self.networks, self.context_projections = [], []
        for step in range(self.num_steps):
            order = np.arange(1, dim + 1) if step % 2 == 0 else np.arange(dim, 0, -1)
            degrees = made_degrees(order, self.hidden_dims)
            network = []
            for i, (inputs, outputs) in enumerate(zip(degrees[:-1], degrees[1:])):
                last = i == len(degrees) - 2
                if last:  # [m, s]: two outputs per dimension.
                    outputs = np.concatenate([outputs, outputs])
                layer = MaskedDense(
                    inputs, outputs, strict=last, dtype=self.dtype_policy, name=f"made_{step}_{i}"
                )
                layer.build(tuple(z_shape[:-1]) + (len(inputs),))
                network.append(layer)
            self.networks.append(network)
            if self.context_dim is not None:
                projection = keras.layers.Dense(
                    network[0].units,
                    use_bias=False,
                    dtype=self.dtype_policy,
                    name=f"context_{step}",
                )
                projection.build((None, self.context_dim))
                self.context_projections.append(projection)

    def step(self, z, context, index):
        """Applies step `index` alone: returns `(z, log_sigma)`, the new `z`
        and the log-diagonal of the step's (triangular) Jacobian, float32."""
        if (context is None) != (self.context_dim is None):
            raise ValueError(
                "InverseAutoregressiveFlow was built "
                + ("without" if self.context_dim is None else "with")
                + " a context; call it "
                + ("without" if self.context_dim is None else "with")
                + " one."
            )
        z = ops.convert_to_tensor(z, dtype=self.compute_dtype)
        if context is not None:
            context = ops.convert_to_tensor(context, dtype=self.compute_dtype)
        hidden = z
        network = self.networks[index]
        for i, layer in enumerate(network):
            hidden = layer(hidden)
            if i == 0 and context is not None:
                hidden = hidden + self.context_projections[index](context)
            if i < len(network) - 1:
                hidden = self.activation(hidden)
        m, s = hidden[..., : self.latent_dim], hidden[..., self.latent_dim :]
        gate = ops.cast(s, "float32") + self.forget_bias
        sigma = ops.cast(ops.sigmoid(gate), z.dtype)
        return sigma * z + (1.0 - sigma) * m, ops.log_sigmoid(gate)

    def call(self, z, context=None):
        log_det = ops.zeros(ops.shape(z), "float32")
        for index in range(self.num_steps):
            z, log_sigma = self.step(z, context, index)
            log_det = log_det + log_sigma
        return z, log_det

    def compute_output_shape(self, z_shape, context_shape=None):
        return tuple(z_shape), tuple(z_shape)

    def compute_output_spec(self, z, context=None):
        return (
            keras.KerasTensor(z.shape, dtype=self.compute_dtype),
            keras.KerasTensor(z.shape, dtype="float32"),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "num_steps": self.num_steps,
            "hidden_dims": self.hidden_dims,
            "forget_bias": self.forget_bias,
            "activation": keras.activations.serialize(self.activation),
        }
