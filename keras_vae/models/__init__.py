"""The zoo's models."""

from keras_vae.models.beta_vae import BetaVAE
from keras_vae.models.generative_model import GenerativeModel
from keras_vae.models.hierarchical_vae import HierarchicalVAE
from keras_vae.models.lstm_language_model import LSTMLanguageModel
from keras_vae.models.text_vae import TextVAE
from keras_vae.models.transformer_prior import TransformerPrior
from keras_vae.models.vae import VAE
from keras_vae.models.vq_vae import VQVAE

__all__ = [
    "BetaVAE",
    "GenerativeModel",
    "HierarchicalVAE",
    "LSTMLanguageModel",
    "TextVAE",
    "TransformerPrior",
    "VAE",
    "VQVAE",
]
