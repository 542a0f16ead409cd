"""Layers of the zoo: sampling, upsampling and the building blocks of models."""

from keras_vae.layers.depth_to_space import DepthToSpace
from keras_vae.layers.inverse_autoregressive_flow import InverseAutoregressiveFlow
from keras_vae.layers.masked_conv_2d import MaskedConv2D
from keras_vae.layers.masked_dense import MaskedDense
from keras_vae.layers.residual_block import ResidualBlock
from keras_vae.layers.sampling import Sampling
from keras_vae.layers.sub_pixel_conv_transpose_2d import SubPixelConvTranspose2D
from keras_vae.layers.text_decoder import TextDecoder
from keras_vae.layers.transformer_block import TransformerBlock
from keras_vae.layers.vector_quantizer import VectorQuantizer
from keras_vae.layers.vocabulary import Vocabulary

__all__ = [
    "DepthToSpace",
    "InverseAutoregressiveFlow",
    "MaskedConv2D",
    "MaskedDense",
    "ResidualBlock",
    "Sampling",
    "SubPixelConvTranspose2D",
    "TextDecoder",
    "TransformerBlock",
    "VectorQuantizer",
    "Vocabulary",
]
