"""Builders of the default encoder and decoder networks of the image models.

Each returns a functional `keras.Model`. Encoders map images to a feature
vector (the model adds its own heads); decoders map a latent vector to one
output per pixel (logits or means), of the image's shape.
"""

import math

import keras
from keras import layers

from keras_vae.layers.depth_to_space import DepthToSpace
from keras_vae.layers.sub_pixel_conv_transpose_2d import SubPixelConvTranspose2D


def mlp_encoder(input_shape, hidden_dims, activation="relu", name="encoder_network"):
    inputs = keras.Input(shape=input_shape)
    x = layers.Flatten()(inputs)
    for units in hidden_dims:
        x = layers.Dense(units, activation=activation)(x)
    return keras.Model(inputs, x, name=name)


def mlp_decoder(
    latent_dim, output_shape, hidden_dims, activation="relu", name="decoder_network"
):
    inputs = keras.Input(shape=(latent_dim,))
    x = inputs
    for units in reversed(hidden_dims):
        x = layers.Dense(units, activation=activation)(x)
    x = layers.Dense(math.prod(output_shape))(x)
    outputs = layers.Reshape(output_shape)(x)
    return keras.Model(inputs, outputs, name=name)


def check_conv_shape(input_shape, num_stages):
    factor = 2**num_stages
    if len(input_shape) != 3 or input_shape[0] % factor or input_shape[1] % factor:
        raise ValueError(
            "The convolutional architecture needs input_shape (height, width, "
            f"channels) with height and width divisible by {factor} "
            f"(2 ** len(hidden_dims)); got input_shape={tuple(input_shape)}. "
            "Use architecture='mlp', fewer hidden_dims, or pad the images."
        )


def conv_encoder(input_shape, hidden_dims, activation="relu", name="encoder_network"):
    """Strided 3x3 convolutions, one stage per entry of `hidden_dims`."""
    check_conv_shape(input_shape, len(hidden_dims))
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for filters in hidden_dims:
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation=activation)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, x, name=name)


UPSAMPLINGS = ("sub_pixel_transpose", "nearest")


def conv_decoder(
    latent_dim,
    output_shape,
    hidden_dims,
    activation="relu",
    upsampling="sub_pixel_transpose",
    name="decoder_network",
):
    """Mirror of `conv_encoder`: stride-2 3x3 transposed convolutions, each
    computed as a sub-pixel convolution (`SubPixelConvTranspose2D`).

    A dense layer feeds the coarsest feature map (`hidden_dims[-1]`
    channels); each stage doubles the resolution with the exact equivalent
    of `Conv2DTranspose(filters, 3, strides=2, padding="same")` (a 2x2
    convolution to `4 * filters` channels then `DepthToSpace(2)`), from
    `hidden_dims[-1]` to `hidden_dims[0]` filters; a final 3x3 convolution
    gives one output per pixel. Chosen by `benchmarks/train_throughput.py`
    (see benchmarks/RESULTS.md): `Conv2DTranspose` itself has a very slow
    gradient on XLA:CPU (JAX), and the earlier defaults, `UpSampling2D(2)`
    then a 3x3 convolution, or a 3x3 sub-pixel convolution (very slow on
    torch), cost 36 multiply-adds per input channel, filter and
    low-resolution pixel where this one costs 16.

    `upsampling="nearest"` builds the default of keras-vae 0.1 instead
    (`UpSampling2D(2)` then `Conv2D(filters, 3)` per stage), which `.keras`
    files saved by that version name implicitly.
    """
    if upsampling not in UPSAMPLINGS:
        raise ValueError(f"`upsampling` must be one of {UPSAMPLINGS}, got {upsampling!r}.")
    check_conv_shape(output_shape, len(hidden_dims))
    factor = 2 ** len(hidden_dims)
    height, width, channels = output_shape
    start = (height // factor, width // factor, hidden_dims[-1])
    inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(math.prod(start), activation=activation)(inputs)
    x = layers.Reshape(start)(x)
    for filters in reversed(hidden_dims):
        if upsampling == "nearest":
            x = layers.UpSampling2D(2)(x)
            x = layers.Conv2D(filters, 3, padding="same", activation=activation)(x)
        else:
            x = SubPixelConvTranspose2D(filters, activation=activation)(x)
    outputs = layers.Conv2D(channels, 3, padding="same")(x)
    return keras.Model(inputs, outputs, name=name)


def deep_conv_encoder(
    input_shape,
    hidden_dims=(32, 64),
    dense_units=512,
    activation="relu",
    name="encoder_network",
):
    """A stronger convolutional encoder: two 3x3 convolutions per stage.

    Each entry of `hidden_dims` is one stage: a stride-1 convolution then a
    stride-2 one, both with that many filters; a dense layer of
    `dense_units` follows (`0` skips it). The encoder runs once per image
    when estimating `log p(x)` by importance sampling, so it can be much
    heavier than the decoder, which runs once per sample.
    """
    check_conv_shape(input_shape, len(hidden_dims))
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for filters in hidden_dims:
        x = layers.Conv2D(filters, 3, padding="same", activation=activation)(x)
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation=activation)(x)
    x = layers.Flatten()(x)
    if dense_units:
        x = layers.Dense(dense_units, activation=activation)(x)
    return keras.Model(inputs, x, name=name)


def lean_conv_decoder(
    latent_dim,
    output_shape,
    hidden_dims=(8, 32),
    dense_units=512,
    activation="relu",
    name="decoder_network",
):
    """A cheap decoder: a dense layer, then sub-pixel convolution stages.

    `dense_units` (`0` skips it) feed a dense projection to the coarsest
    feature map (`hidden_dims[-1]` channels); each stage then is a 3x3
    convolution to `4 * filters` channels followed by `DepthToSpace(2)`,
    from `hidden_dims[-1]` to `hidden_dims[0]` filters, and a final 3x3
    convolution gives one output per pixel. With the defaults on 28x28
    images it costs about 4.5M multiply-adds per image, several times less
    than `conv_decoder`, which keeps importance-sampled `log p(x)` with
    thousands of samples affordable on a CPU.
    """
    check_conv_shape(output_shape, len(hidden_dims))
    factor = 2 ** len(hidden_dims)
    height, width, channels = output_shape
    start = (height // factor, width // factor, hidden_dims[-1])
    inputs = keras.Input(shape=(latent_dim,))
    x = inputs
    if dense_units:
        x = layers.Dense(dense_units, activation=activation)(x)
    x = layers.Dense(math.prod(start), activation=activation)(x)
    x = layers.Reshape(start)(x)
    for index in reversed(range(len(hidden_dims))):
        # The stage keeps the channels it has and upsamples them to
        # `hidden_dims[index]` channels at twice the resolution.
        x = layers.Conv2D(
            4 * hidden_dims[index], 3, padding="same", activation=activation
        )(x)
        x = DepthToSpace(2)(x)
    outputs = layers.Conv2D(channels, 3, padding="same")(x)
    return keras.Model(inputs, outputs, name=name)
