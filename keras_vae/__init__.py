"""keras-vae: a Keras 3 model zoo of variational autoencoders.

The same code trains on the TensorFlow, JAX and PyTorch backends.

Example:

>>> import keras_vae as kv
>>> model = kv.VAE(input_shape=(28, 28, 1), latent_dim=8)
"""

# First: sets up the `keras-vae` command's process before Keras loads.
import keras_vae._command_line  # noqa: F401
from keras_vae import compression, datasets, layers, losses, metrics, presets, samplers
from keras_vae.callbacks import NaNGuard
from keras_vae.export import export_saved_model
from keras_vae.models import (
    VAE,
    VQVAE,
    BetaVAE,
    GenerativeModel,
    HierarchicalVAE,
    LSTMLanguageModel,
    TextVAE,
    TransformerPrior,
)
from keras_vae.presets import from_preset, list_presets

__version__ = "0.1.0"

__all__ = [
    "BetaVAE",
    "GenerativeModel",
    "HierarchicalVAE",
    "LSTMLanguageModel",
    "NaNGuard",
    "TextVAE",
    "TransformerPrior",
    "VAE",
    "VQVAE",
    "compression",
    "datasets",
    "export_saved_model",
    "from_preset",
    "layers",
    "list_presets",
    "losses",
    "metrics",
    "presets",
    "samplers",
]
