import numpy as np
import pytest

from keras_vae.datasets.text_batches import TextBatches
from keras_vae.layers import Vocabulary
from keras_vae.models import TextVAE

CORPUS = [" ".join(["a"] * n) for n in (1, 9, 2, 3, 20, 4, 8, 1)]


def test_batches_group_similar_lengths_and_cover_everything():
    vocabulary = Vocabulary(["a"])
    batches = TextBatches(CORPUS, vocabulary.tokenize, batch_size=3, seed=0)
    assert len(batches) == 3
    for epoch in range(2):
        seen = []
        for index in range(len(batches)):
            (ids,) = batches[index]
            assert ids.shape[1] % 8 == 0 and np.all(ids[:, 0] == 1)
            seen += vocabulary.detokenize(ids)
        assert sorted(seen) == sorted(CORPUS)
        batches.on_epoch_end()
    ordered = TextBatches(CORPUS, vocabulary.tokenize, 3, shuffle=False)
    assert [ordered[i][0].shape[1] for i in range(3)] == [8, 16, 24]


# Ten sentences of 1-6 words (padded to 8 ids) and two of 12 (padded to 16).
MIXED = [" ".join(["a"] * n) for n in (1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 12, 12)]


@pytest.mark.parametrize("shuffle", [False, True])
def test_first_two_batches_differ_in_length_when_lengths_vary(shuffle):
    # Keras' TensorFlow trainer fixes every dimension the first two
    # batches share; a longer batch later in the epoch would then fail.
    vocabulary = Vocabulary(["a"])
    for seed in range(10):
        batches = TextBatches(MIXED, vocabulary.tokenize, 4, shuffle=shuffle, seed=seed)
        for _ in range(3):
            widths = [batches[i][0].shape[1] for i in range(len(batches))]
            assert sorted(widths) == [8, 8, 16]
            assert widths[0] != widths[1], widths
            batches.on_epoch_end()
    same = TextBatches(MIXED[:8], vocabulary.tokenize, 4, seed=0)
    assert [same[i][0].shape[1] for i in range(2)] == [8, 8]


def test_fit_and_evaluate_on_batches_of_varying_length():
    # Failed on TensorFlow before: "generator yielded an element of shape
    # (4, 16) where an element of shape (None, 8) was expected".
    vocabulary = Vocabulary(["a"])
    model = TextVAE(vocabulary, embedding_dim=4, hidden_dim=4, latent_dim=2, seed=0)
    model.compile(optimizer="adam")
    history = model.fit(TextBatches(MIXED, vocabulary.tokenize, 4, shuffle=False), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    logs = model.evaluate(
        TextBatches(MIXED, vocabulary.tokenize, 4, shuffle=False), verbose=0, return_dict=True
    )
    assert np.isfinite(logs["loss"])


def test_an_epoch_batches_depend_on_seed_and_epoch_only():
    vocabulary = Vocabulary(["a"])
    corpus = [" ".join(["a"] * n) + " b" * i for i, n in enumerate(range(1, 25))]

    def contents(batches):
        return [tuple(vocabulary.detokenize(batches[i][0])) for i in range(len(batches))]

    run = TextBatches(corpus, vocabulary.tokenize, 4, seed=3)
    epochs = []
    for _ in range(3):
        epochs.append(contents(run))
        run.on_epoch_end()
    assert epochs[0] != epochs[1] != epochs[2]  # reshuffled every epoch
    # A resumed run sets the epoch and gets the uninterrupted run's batches.
    resumed = TextBatches(corpus, vocabulary.tokenize, 4, seed=3)
    resumed.epoch = 2
    assert contents(resumed) == epochs[2]
    assert contents(TextBatches(corpus, vocabulary.tokenize, 4, seed=4)) != epochs[0]
