import keras
import numpy as np

from keras_vae import samplers
from keras_vae.models import LSTMLanguageModel, TextVAE
from tests.models.text_vae_test import CORPUS, tiny, trained
from tests.test_case import assert_config_round_trip


def test_language_model_baseline():
    model = trained(tiny(LSTMLanguageModel, output_dropout=0.1))
    assert "latent_dim" not in model.get_config()
    assert_config_round_trip(model)
    log_px = model.log_likelihood(CORPUS)
    logs = model.evaluate(CORPUS, batch_size=len(CORPUS), verbose=0, return_dict=True)
    # The exact log-likelihood is what the training step optimizes.
    np.testing.assert_allclose(-np.mean(log_px), logs["loss"], rtol=1e-4)
    samples = model.sample(3, seed=0)
    assert len(samples) == 3 and samples == model.sample(3, seed=0)


def test_the_vae_is_a_language_model_with_a_latent():
    # A base network with a task on top: the language model has no
    # latent verbs at all, the VAE adds them.
    lm, vae = tiny(LSTMLanguageModel), tiny()
    assert isinstance(vae, LSTMLanguageModel) and not isinstance(lm, TextVAE)
    for verb in ("encode", "decode", "reconstruct", "interpolate", "elbo"):
        assert hasattr(vae, verb) and not hasattr(lm, verb)
    assert lm.text_decoder.latent_dim == 0 and vae.text_decoder.latent_dim == 2


def test_decoding_strategies_over_the_step_function():
    model = trained(tiny(LSTMLanguageModel), epochs=2)
    greedy = model.sample(3, decoding="greedy")
    assert len(set(greedy)) == 1  # no latent, no noise: one sentence
    assert model.sample(2, decoding=samplers.GreedySampler()) == greedy[:2]
    beam = model.sample(2, decoding=samplers.BeamSampler(num_beams=4))
    assert beam == model.sample(2, decoding="beam", beam_width=4)

    def score(sentences):
        ids = model.tokenize(sentences)
        return np.sum(keras.ops.convert_to_numpy(model.decoder(ids)), axis=1)

    assert np.all(score(beam) >= score(greedy[:2]) - 1e-4)
    drawn = model.sample(6, seed=1, decoding=samplers.RandomSampler(temperature=0.5, seed=1))
    assert drawn == model.sample(6, seed=1, temperature=0.5)
