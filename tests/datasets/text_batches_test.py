import numpy as np

from keras_vae.datasets.text_batches import TextBatches
from keras_vae.layers import Vocabulary

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
