import numpy as np
import pytest

from keras_vae import datasets
from keras_vae.datasets import DatasetNotFoundError, data_dir


def test_binarized_mnist_splits():
    (train, y), (valid, _), (test, _) = datasets.load(
        "binarized_mnist", splits=("train", "valid", "test")
    )
    assert y is None
    assert train.shape == (50000, 28, 28, 1) and train.dtype == np.float32
    assert valid.shape == test.shape == (10000, 28, 28, 1)
    assert set(np.unique(test)) == {0.0, 1.0}
    assert abs(test.mean() - 0.1325) < 1e-3  # the README's figure


def test_mnist():
    (x, y), (xt, yt) = datasets.load("mnist")
    assert x.shape == (60000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert list(y[:5]) == [5, 0, 4, 1, 9] and list(yt[:3]) == [7, 2, 1]


def test_tf_dataset_option():
    (test,) = datasets.load("binarized_mnist", splits=("test",), as_tf_dataset=True, batch_size=100)
    batch = next(iter(test))
    assert tuple(batch.shape) == (100, 28, 28, 1)


def test_unknown_name_and_split():
    with pytest.raises(ValueError, match="Unknown data set 'cifar'.*binarized_mnist"):
        datasets.load("cifar")
    with pytest.raises(ValueError, match="splits"):
        datasets.load("mnist", splits=("valid",))


def test_missing_data_fails_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(data_dir, "data_dirs", lambda: [tmp_path])
    monkeypatch.setattr("keras_vae.datasets.mnist.find_file", lambda _: None)
    # The .invalid domain never resolves: the probe fails at once.
    monkeypatch.setattr("keras_vae.datasets.mnist.URL", "http://keras-vae.invalid/")
    with pytest.raises(DatasetNotFoundError, match="KERAS_VAE_DATA_DIR"):
        datasets.load("mnist", splits=("test",))


def test_data_dir_setting(tmp_path):
    datasets.set_data_dir(tmp_path)
    try:
        assert datasets.data_dirs()[0] == tmp_path
    finally:
        datasets.set_data_dir(None)


def test_tfds_bridge_reads_prepared_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6, data_dir=str(tmp_path)):
        (x, y), = datasets.load("tfds:mnist", splits=("train",), data_dir=str(tmp_path))
    assert x.shape == (6, 28, 28, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and y.shape == (6,)


def test_tfds_bridge_fails_fast_offline(tmp_path, monkeypatch):
    import time

    monkeypatch.setattr("keras_vae.datasets.tfds_bridge.PROBE_URL", "http://keras-vae.invalid/")
    start = time.time()
    with pytest.raises(DatasetNotFoundError, match="tfds:mnist"):
        datasets.load("tfds:mnist", splits=("train",), data_dir=str(tmp_path))
    assert time.time() - start < 30  # tfds alone retries for minutes
