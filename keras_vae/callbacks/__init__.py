"""Callbacks for `fit`: divergence guard, sample grids and more."""

from keras_vae.callbacks.sample_grid import SampleGrid
from keras_vae.training.nan_guard import NaNGuard  # lives with training; re-exported

__all__ = ["NaNGuard", "SampleGrid"]
