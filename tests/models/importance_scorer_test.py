import numpy as np

from keras_vae.models import VAE
from keras_vae.models.importance_scorer import ImportanceScorer


def test_first_compiled_call_runs_the_scorer_once():
    # Built on construction: an unbuilt scorer made Keras' JAX
    # `predict_on_batch` run `call` eagerly on the whole batch before
    # compiling it (the first evaluation of a batch shape took twice as long).
    vae = VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,), seed=0)
    scorer = ImportanceScorer(vae)
    calls = []
    original = scorer.call
    scorer.call = lambda inputs: calls.append(1) or original(inputs)
    x = np.zeros((3, 4, 4, 1), "float32")
    first = scorer.log_likelihood(x, num_samples=10, batch_size=3, seed=0, max_decode=8)
    assert len(calls) == 1
    again = scorer.log_likelihood(x, num_samples=10, batch_size=3, seed=0, max_decode=8)
    np.testing.assert_array_equal(first, again)
