import keras
import numpy as np
import pytest

from keras_vae.layers import Vocabulary
from keras_vae.models import LSTMLanguageModel

# Sentences of 1 to 6 words: their log-likelihoods differ a lot, so a mean
# of batch means and the mean over sentences disagree.
CORPUS = [" ".join(["the", "old", "cat", "sat", "on", "it"][: 1 + i % 6]) for i in range(30)]


def test_logs_are_per_example_means_whatever_the_batch_sizes():
    model = LSTMLanguageModel(
        Vocabulary.from_sentences(CORPUS), embedding_dim=4, hidden_dim=4, seed=0
    )
    # A learning rate of 0 leaves the weights alone, so fit's logs and
    # evaluate's must both be the exact mean negative log-likelihood.
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    ids = model.tokenize(sorted(CORPUS, key=len))  # batches of 12, 12, 6
    expected = -np.mean(model.log_likelihood(sorted(CORPUS, key=len)))
    history = model.fit(ids, batch_size=12, epochs=1, shuffle=False, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert model.evaluate(ids, batch_size=12, verbose=0) == pytest.approx(expected, rel=1e-5)
