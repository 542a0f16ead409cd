"""Random batches of sprites rendered on the fly, for `fit` on every backend."""

import keras
import numpy as np

from keras_vae.datasets import sprites


class SpriteBatches(keras.utils.PyDataset):
    """Batches of sprites drawn uniformly at random, rendered on the fly.

    Each batch is `batch_size` images drawn with replacement from `indices`
    (by default all 737,280 sprites), as in disentanglement_lib (Locatello
    et al. 2019); only the batch in hand is in memory. Batch `i` of epoch
    `e` depends only on `(seed, e, i)`, so a run is reproducible and the
    draws change every epoch. Needs NumPy only (no TensorFlow, unlike
    `sprites.sprites_tf_dataset`), so it feeds `fit` on JAX and PyTorch
    machines without TensorFlow installed; `workers=2` (a `PyDataset`
    argument) renders batches in background threads.

    Args:
        batch_size: int. Images per batch. Defaults to `64`.
        steps: int. Batches per epoch (`len`). Defaults to `1000`.
        indices: optional int array of flat sprite indices to draw from
            (e.g. `sprites.split_indices("train")`). Defaults to all.
        seed: int. Seed of the draws. Defaults to `0`.
        with_classes: bool. Yield `(images, classes)` instead of images.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`,
            `use_multiprocessing`, `max_queue_size`).

    Example:

    >>> batches = SpriteBatches(batch_size=8, steps=2, with_classes=True)
    >>> images, classes = batches[0]
    >>> images.shape, images.dtype, classes.shape
    ((8, 64, 64, 1), dtype('float32'), (8, 5))
    >>> len(batches)
    2
    """

    def __init__(
        self,
        batch_size=64,
        steps=1000,
        indices=None,
        seed=0,
        with_classes=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("batch_size", batch_size), ("steps", steps)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        self.batch_size = int(batch_size)
        self.steps = int(steps)
        self.indices = None
        if indices is not None:
            self.indices = np.asarray(indices)
            if (
                self.indices.ndim != 1
                or len(self.indices) == 0
                or not np.issubdtype(self.indices.dtype, np.integer)
            ):
                raise ValueError(
                    "`indices` must be a non-empty 1-D int array of sprite "
                    f"indices, got shape {self.indices.shape} and dtype "
                    f"{self.indices.dtype}."
                )
            sprites.index_to_classes(self.indices)  # range check
        self.seed = int(seed)
        self.with_classes = bool(with_classes)
        self.epoch = 0

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        if not 0 <= index < self.steps:
            raise IndexError(f"Batch {index} out of range: there are {self.steps}.")
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        if self.indices is None:
            chosen = rng.integers(0, sprites.NUM_IMAGES, self.batch_size)
        else:
            chosen = self.indices[rng.integers(0, len(self.indices), self.batch_size)]
        classes = sprites.index_to_classes(chosen)
        images = sprites.sprites_images(classes)
        return (images, classes) if self.with_classes else images

    def on_epoch_end(self):
        self.epoch += 1
