"""Callbacks for `fit`: divergence guard, sample grids and more."""

from keras_vae.callbacks.nan_guard import NaNGuard

__all__ = ["NaNGuard"]
