"""Data sets: `load(name)` returns NumPy arrays (or `tf.data` pipelines).

Local copies are read from the data directory (see `data_dirs`); missing
files are downloaded from the canonical source into the Keras cache.
"""

from keras_vae.datasets.binarized_mnist import load_binarized_mnist
from keras_vae.datasets.data_dir import data_dirs, set_data_dir
from keras_vae.datasets.download import DatasetNotFoundError
from keras_vae.datasets.mnist import load_mnist
from keras_vae.datasets.ptb import load_ptb
from keras_vae.datasets.sprite_batches import SpriteBatches
from keras_vae.datasets.sprites import load_dsprites, load_sprites
from keras_vae.datasets.text_batches import TextBatches
from keras_vae.datasets.tfds_bridge import load_tfds

LOADERS = {
    "mnist": load_mnist,
    "binarized_mnist": load_binarized_mnist,
    "ptb": load_ptb,
    "sprites": load_sprites,
    "dsprites": load_dsprites,
}


def register(name, loader):
    """Makes `load(name)` call `loader(split) -> (x, y)`."""
    LOADERS[name] = loader


def load(
    name,
    splits=("train", "test"),
    as_tf_dataset=False,
    batch_size=128,
    shuffle=True,
    **options,
):
    """Loads a data set as one `(x, y)` pair per split.

    Args:
        name: str. One of `available()`: `"mnist"`, `"binarized_mnist"`,
            ..., or `"tfds:<name>"` for a TensorFlow Datasets image set
            (needs the `tfds` extra).
        splits: tuple of str. Which splits, in order. `binarized_mnist` has
            `"train"` (50k), `"valid"` (10k) and `"test"` (10k); `mnist` has
            `"train"` (60k) and `"test"` (10k). Defaults to
            `("train", "test")`.
        as_tf_dataset: bool. Return batched `tf.data.Dataset`s of `x` (the
            training split shuffled) instead of arrays. Defaults to `False`.
        batch_size: int. Batch size of the `tf.data` pipelines.
        shuffle: bool. Shuffle the `"train"` pipeline each epoch.
        **options: passed to the data set's loader, e.g.
            `load("sprites", splits=("train",), num_examples=100_000)`.

    Returns:
        A tuple with one `(x, y)` per split (`y` is `None` for unlabeled
        data), or one `tf.data.Dataset` per split.

    Example:

    >>> (x_train, _), (x_test, _) = load("binarized_mnist")
    >>> x_train.shape, x_test.shape
    ((50000, 28, 28, 1), (10000, 28, 28, 1))
    """
    if name.startswith("tfds:"):
        loader = lambda split, **kw: load_tfds(name[len("tfds:"):], split, **kw)  # noqa: E731
    elif name in LOADERS:
        loader = LOADERS[name]
    else:
        raise ValueError(
            f"Unknown data set {name!r}. Available: {available()}, or "
            "'tfds:<name>' for any TensorFlow Datasets image set."
        )
    if isinstance(splits, str):
        raise TypeError("`splits` takes a tuple of split names, e.g. ('train',).")
    results = tuple(loader(split, **options) for split in splits)
    if not as_tf_dataset:
        return results
    import tensorflow as tf

    pipelines = []
    for split, (x, _) in zip(splits, results):
        dataset = tf.data.Dataset.from_tensor_slices(x)
        if shuffle and split == "train":
            dataset = dataset.shuffle(len(x), reshuffle_each_iteration=True)
        pipelines.append(dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE))
    return tuple(pipelines)


def available():
    """Names accepted by `load`."""
    return sorted(LOADERS)


__all__ = [
    "DatasetNotFoundError",
    "SpriteBatches",
    "TextBatches",
    "available",
    "data_dirs",
    "load",
    "register",
    "set_data_dir",
]
