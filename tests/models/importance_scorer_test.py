import logging

import keras
import numpy as np

from keras_vae import training
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


def _scored_twice(monkeypatch, setting):
    """Scores with `KERAS_VAE_TORCH_COMPILE=setting` and eagerly; returns
    the scorer and both results."""
    monkeypatch.setenv("KERAS_VAE_TORCH_COMPILE", setting)
    vae = VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,), seed=0)
    scorer = ImportanceScorer(vae)
    x = (np.random.default_rng(0).random((5, 4, 4, 1)) > 0.5).astype("float32")
    args = dict(num_samples=10, batch_size=5, seed=0, max_decode=8)
    compiled = scorer.log_likelihood(x, **args)
    return scorer, compiled, scorer.log_likelihood(x, compiled=False, **args)


def test_forced_torch_compile_scores_as_the_eager_decoder(monkeypatch):
    graphs = _compiled_graphs()
    scorer, compiled, eager = _scored_twice(monkeypatch, "1")
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-5)
    if keras.backend.backend() == "torch":
        assert isinstance(scorer.compiled_decoder, training.CompiledDecoder)
        assert scorer.compiled_decoder.compiled is not None  # no fallback
        assert _compiled_graphs() > graphs
    else:  # TensorFlow and JAX compile the whole scorer instead.
        assert "compiled_decoder" not in scorer.__dict__
    assert scorer.decoder_in_use is None  # reset after the call


def test_a_failing_torch_compile_warns_and_scores_eagerly(monkeypatch, caplog):
    def no_compiler(function, **kwargs):
        def fail(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

        return fail

    if keras.backend.backend() == "torch":
        import torch

        monkeypatch.setattr(torch, "compile", no_compiler)
    with caplog.at_level(logging.WARNING):
        scorer, compiled, eager = _scored_twice(monkeypatch, "1")
    np.testing.assert_array_equal(compiled, eager)
    if keras.backend.backend() == "torch":
        assert scorer.compiled_decoder.compiled is None
        assert "InvalidCxxCompiler" in caplog.text and "runs eagerly" in caplog.text
    else:
        assert "runs eagerly" not in caplog.text


def _compiled_graphs():
    if keras.backend.backend() != "torch":
        return 0
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def _records_gradients(tensor):
    """Whether `tensor` carries an autograd graph (only torch's eager ops
    record one; TensorFlow and JAX compute gradients explicitly)."""
    return bool(getattr(tensor, "requires_grad", False))


def test_eager_scoring_records_no_autograd_graph():
    # On torch an eager `log_likelihood` used to record the graph of every
    # chunk of its loop: the hvae recipe's network reached 8.6 GB at k=50
    # on 64 images, 2.7 GB at k=10 (compiled: 1 GB), and was killed for
    # memory at k=200.
    vae = VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,), seed=0)
    scorer = ImportanceScorer(vae)
    weights_fn = vae.importance_log_weight_fn
    recorded = []

    def spy(x, decoder=None):
        log_weights = weights_fn(x, decoder)

        def recording(noise):
            result = log_weights(noise)
            recorded.append(_records_gradients(result))
            return result

        return recording

    vae.importance_log_weight_fn = spy
    x = np.zeros((3, 4, 4, 1), "float32")
    scorer.log_likelihood(x, num_samples=6, batch_size=3, seed=0, max_decode=6, compiled=False)
    assert recorded and not any(recorded)


def test_batches_shrink_to_keep_the_noise_of_one_batch_bounded(monkeypatch):
    """A batch's noise is `num_samples * noise_dim` floats per example (a
    HierarchicalVAE at k = 1000: 9.4 MB each, 4.7 GB for 500 images, an
    OOM): batches shrink to `MAX_NOISE_FLOATS`, and score as that batch
    size passed explicitly does."""
    from keras_vae.models import importance_scorer

    vae = VAE(input_shape=(4, 4, 1), latent_dim=3, architecture="mlp", hidden_dims=(8,), seed=0)
    scorer = ImportanceScorer(vae)
    x = (np.random.default_rng(1).random((7, 4, 4, 1)) > 0.5).astype("float32")
    args = dict(num_samples=10, seed=0, max_decode=64)
    explicit = scorer.log_likelihood(x, batch_size=2, **args)
    monkeypatch.setattr(importance_scorer, "MAX_NOISE_FLOATS", 2 * 10 * 3 + 5)
    shapes = []
    normal = keras.random.normal
    monkeypatch.setattr(
        keras.random, "normal", lambda shape, **kw: shapes.append(shape) or normal(shape, **kw)
    )
    bounded = scorer.log_likelihood(x, batch_size=7, **args)
    assert [shape[2] for shape in shapes] == [2, 2, 2, 1]
    np.testing.assert_array_equal(bounded, explicit)
