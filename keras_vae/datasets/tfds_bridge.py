"""Any TensorFlow Datasets image set through `load("tfds:<name>")`.

`tfds.load` retries the network for minutes before failing offline, so the
bridge checks for a prepared copy first and probes the network before it
asks tfds to download anything.
"""

import numpy as np

from keras_vae.datasets.download import check_connection

# Host tfds downloads its metadata and most data sets from.
PROBE_URL = "https://storage.googleapis.com/"


def load_tfds(name, split, data_dir=None, image_key="image", label_key="label"):
    """One split of a TFDS image data set as NumPy arrays.

    Args:
        name: str. The TFDS name, e.g. `"fashion_mnist"` or `"omniglot"`.
        split: str. A TFDS split, e.g. `"train"` or `"test[:10%]"`.
        data_dir: str or `None`. TFDS data directory (TFDS's default if
            `None`).
        image_key: str. Feature holding the images. Defaults to `"image"`.
        label_key: str or `None`. Feature holding labels, if any.

    Returns:
        `(x, y)`: float32 images scaled to `[0, 1]` (uint8 features are
        divided by 255), and int64 labels or `None`.

    Example:

    >>> import keras_vae as kv
    >>> (x, y), = kv.datasets.load(  # doctest: +SKIP
    ...     "tfds:fashion_mnist", splits=("test",))
    """
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "load('tfds:...') needs TensorFlow Datasets: "
            "pip install 'keras-vae[tfds]'"
        ) from error
    try:  # A prepared copy: no network at all.
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except Exception:  # tfds raises several types for "not prepared"
        check_connection(PROBE_URL, f"tfds:{name}")
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=True)
    features = dataset.element_spec
    if image_key not in features:
        raise ValueError(
            f"tfds:{name} has no feature {image_key!r}; features: {list(features)}. "
            "Pass image_key=..."
        )
    images, labels = [], []
    has_labels = label_key is not None and label_key in features
    for example in tfds.as_numpy(dataset):
        images.append(example[image_key])
        if has_labels:
            labels.append(example[label_key])
    x = np.stack(images)
    x = x.astype("float32") / 255.0 if x.dtype == np.uint8 else x.astype("float32")
    return x, (np.asarray(labels, "int64") if has_labels else None)
