"""The zoo's models."""

from keras_vae.models.generative_model import GenerativeModel
from keras_vae.models.vae import VAE

__all__ = ["GenerativeModel", "VAE"]
