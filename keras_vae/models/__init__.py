"""The zoo's models."""

from keras_vae.models.beta_vae import BetaVAE
from keras_vae.models.generative_model import GenerativeModel
from keras_vae.models.lstm_language_model import LSTMLanguageModel
from keras_vae.models.text_vae import TextVAE
from keras_vae.models.vae import VAE

__all__ = [
    "BetaVAE",
    "GenerativeModel",
    "LSTMLanguageModel",
    "TextVAE",
    "VAE",
]
