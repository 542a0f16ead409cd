import pytest

from keras_vae import datasets
from keras_vae.datasets import DatasetNotFoundError, data_dir
from keras_vae.layers import Vocabulary


def test_ptb_splits_match_the_published_counts():
    (train, y), (valid, _), (test, _) = datasets.load(
        "ptb", splits=("train", "valid", "test")
    )
    assert y is None
    assert (len(train), len(valid), len(test)) == (42068, 3370, 3761)
    assert all(isinstance(s, str) for s in test)
    # Words per split without <eos>, as in the data README.
    assert sum(len(s.split()) for s in valid) == 70390
    assert sum(len(s.split()) for s in test) == 78669
    assert valid[0].startswith("consumers may want to move")
    assert max(len(s.split()) for s in train) == 82
    # The usual 10k vocabulary: 9,999 tokens with <unk>, plus <eos>; here
    # <unk> is a special token and <pad>, <bos>, <eos> are added.
    vocabulary = Vocabulary.from_sentences(train)
    assert len(vocabulary.tokens) == 9998 and vocabulary.size == 10002
    ids = vocabulary.tokenize(test)
    assert ids.shape == (3761, 79)
    assert vocabulary.detokenize(ids[:50]) == test[:50]


def test_ptb_bad_split_and_offline_failure(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="ptb has splits"):
        datasets.load("ptb", splits=("dev",))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(data_dir, "data_dirs", lambda: [tmp_path])
    monkeypatch.setattr("keras_vae.datasets.ptb.find_file", lambda _: None)
    monkeypatch.setattr(
        "keras_vae.datasets.ptb.URL", "http://10.255.255.1/ptb.{split}.txt"
    )
    with pytest.raises(DatasetNotFoundError, match="KERAS_VAE_DATA_DIR"):
        datasets.load("ptb", splits=("test",))


def test_ptb_corrupt_file_is_refused(tmp_path, monkeypatch):
    (tmp_path / "ptb").mkdir()
    (tmp_path / "ptb" / "ptb.test.txt").write_text("a b\n\nc\n")
    monkeypatch.setattr(
        "keras_vae.datasets.ptb.find_file",
        lambda p: tmp_path / p if (tmp_path / p).is_file() else None,
    )
    with pytest.raises(ValueError, match="corrupt"):
        datasets.load("ptb", splits=("test",))
