"""Callbacks for `fit`: divergence guard, sample grids and more."""

from keras_vae.callbacks.nan_guard import NaNGuard
from keras_vae.callbacks.sample_grid import SampleGrid

__all__ = ["NaNGuard", "SampleGrid"]
