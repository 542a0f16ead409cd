import keras
import numpy as np
import pytest

from keras_vae import presets, samplers
from keras_vae.layers import Vocabulary
from keras_vae.models import LSTMLanguageModel, TextVAE
from tests.test_case import (
    assert_config_round_trip,
    assert_saved_model_round_trip,
    ring_backends,
    run_on_other_backends,
)

SUBJECTS = ["the cat", "a dog", "the old man", "my friend"]
VERBS = ["sat", "ran", "slept", "ate the fish"]
CORPUS = [f"{s} {v}" for s in SUBJECTS for v in VERBS] * 2
VOCABULARY = Vocabulary.from_sentences(CORPUS)


def tiny(cls=TextVAE, **kwargs):
    args = dict(embedding_dim=8, hidden_dim=8, seed=0, max_length=12)
    if cls is TextVAE:
        args["latent_dim"] = 2
    return cls(VOCABULARY, **{**args, **kwargs})


def trained(model, epochs=1, lr=1e-2):
    model.compile(optimizer=keras.optimizers.Adam(lr))
    model.fit(CORPUS, epochs=epochs, batch_size=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def vae():
    model = tiny(
        word_dropout=0.25,
        embedding_dropout=0.1,
        kl_warmup_steps=100,
        kl_warmup_start=0.1,
        free_bits=0.25,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(
        CORPUS,
        validation_data=(CORPUS[:8],),
        epochs=2,
        batch_size=8,
        verbose=0,
    )
    model.history_ = history.history
    return model


def test_random_streams_have_distinct_seeds():
    # One seed for the sampling, both dropouts and the word dropout would
    # draw correlated noise: counter-based generators give the same leading
    # bits for the same seed whatever the shape.
    model = tiny(seed=7, word_dropout=0.1, embedding_dropout=0.1, output_dropout=0.1)
    decoder = model.text_decoder
    generators = [
        model.sampling.seed_generator,
        decoder.input_dropout_layer.seed_generator,
        decoder.output_dropout_layer.seed_generator,
        decoder.seed_generator,
    ]
    seeds = [int(keras.ops.convert_to_numpy(g.state)[0]) for g in generators]
    assert seeds == [7, 8, 9, 10]


def test_training_logs_annealing_and_free_bits(vae):
    logs = vae.history_
    assert set(logs) >= {"loss", "reconstruction_loss", "kl_loss", "kl_weight"}
    assert logs["loss"][-1] < logs["loss"][0]
    assert logs["kl_loss"][-1] > 0.0
    # 8 steps done; the schedule lives in the model and runs under jit.
    assert int(keras.ops.convert_to_numpy(vae.steps_trained)) == 8
    terms = vae.evaluate(CORPUS, batch_size=32, verbose=0, return_dict=True)
    weight = 0.1 + 0.9 * (8 + 1) / 100
    np.testing.assert_allclose(terms["kl_weight"], weight, rtol=1e-5)
    # Free bits floor each dimension's batch-mean KL in the objective (one
    # batch of 32 here); the logged kl_loss stays the true KL.
    z_mean, z_log_var = vae.encode(CORPUS)
    kl_dims = np.mean(0.5 * (np.exp(z_log_var) + z_mean**2 - 1 - z_log_var), 0)
    np.testing.assert_allclose(terms["kl_loss"], kl_dims.sum(), rtol=1e-4)
    penalty = weight * np.sum(np.maximum(kl_dims, 0.25))
    np.testing.assert_allclose(terms["loss"] - terms["reconstruction_loss"], penalty, rtol=1e-3)


def test_strings_in_strings_out(vae):
    words = set(VOCABULARY.tokens) | {"<unk>"}
    for decoding in ("greedy", "sample", "beam"):
        out = vae.reconstruct(CORPUS[:3], decoding=decoding, seed=0)
        assert len(out) == 3 and all(isinstance(s, str) for s in out)
        assert all(set(s.split()) <= words for s in out)
    samples = vae.sample(4, seed=3, temperature=0.7)
    assert samples == vae.sample(4, seed=3, temperature=0.7)
    assert len(samples) == 4 and all(len(s.split()) <= 12 for s in samples)
    path = vae.interpolate(CORPUS[0], CORPUS[-1], steps=4)
    assert len(path) == 4 and all(isinstance(s, str) for s in path)
    z_mean, z_log_var = vae.encode(CORPUS[:5])
    assert z_mean.shape == z_log_var.shape == (5, 2)
    assert len(vae.decode(z_mean, decoding="beam", beam_width=3)) == 5


def test_one_greedy_decoder_for_the_verbs_and_the_export_graph(vae):
    # decode(decoding="greedy") and greedy_decode_tensor (the serving
    # graph's) run the same GreedySampler over decoding_step.
    z = np.random.default_rng(1).normal(size=(5, 2)).astype("float32")
    ids = keras.ops.convert_to_numpy(vae.greedy_decode_tensor(z))
    assert ids.shape == (5, 13)
    assert vae.detokenize(ids) == vae.decode(z, decoding="greedy")
    assert vae.decode(z, decoding=samplers.GreedySampler()) == vae.decode(z)


def test_samplers_are_accepted_as_objects(vae):
    z = np.random.default_rng(2).normal(size=(4, 2)).astype("float32")
    beam = vae.decode(z, decoding=samplers.BeamSampler(num_beams=3))
    assert beam == vae.decode(z, decoding="beam", beam_width=3)
    drawn = vae.decode(z, decoding=samplers.RandomSampler(temperature=0.7, seed=5))
    assert drawn == vae.decode(z, decoding="sample", temperature=0.7, seed=5)
    # top_k=1 leaves one word to draw: the greedy sentence.
    assert vae.decode(z, decoding=samplers.RandomSampler(top_k=1, seed=0)) == vae.decode(z)


def test_beam_search_scores_at_least_greedy(vae):
    z = np.random.default_rng(0).normal(size=(6, 2)).astype("float32")
    greedy = vae.decode(z, decoding="greedy")
    beam = vae.decode(z, decoding="beam", beam_width=4)

    def score(sentences):
        ids = vae.tokenize(sentences)
        return np.sum(keras.ops.convert_to_numpy(vae.decoder([ids, z])), 1)

    assert np.all(score(beam) >= score(greedy) - 1e-4)


def test_padding_and_batching_do_not_change_results(vae):
    # Alone, "the cat sat" is padded to 8 ids; beside a long sentence, to
    # 16 (verbs sort by length and pad per batch). The encoder's masking
    # makes that irrelevant; results come back in input order. (The
    # decoder's padding invariance is checked in text_decoder_test.py.)
    long = "the old man ate the fish the cat ate the fish"
    sentences = ["the cat sat", long, "my friend ate the fish"]
    alone = vae.encode(sentences[:1])[0]
    together = vae.encode(sentences)[0]
    np.testing.assert_allclose(together[:1], alone, atol=1e-5)
    np.testing.assert_allclose(together[1:2], vae.encode([long])[0], atol=1e-5)
    log_px = vae.log_likelihood(sentences, num_samples=16, batch_size=1)
    assert log_px.shape == (3,) and np.all(log_px < 0)
    elbo = vae.elbo(sentences, num_samples=16)
    assert np.all(log_px >= elbo - 0.5)  # IWAE bound >= ELBO (in mean)


def test_serialization_keeps_the_vocabulary(vae, tmp_path):
    config = vae.get_config()
    assert config["vocabulary"] == VOCABULARY.tokens
    assert_config_round_trip(vae)
    loaded = assert_saved_model_round_trip(vae, CORPUS[:6], "encode", tmp_path, atol=1e-5)
    assert loaded.reconstruct(CORPUS[:6]) == vae.reconstruct(CORPUS[:6])
    assert loaded.sample(3, seed=1) == vae.sample(3, seed=1)
    # A preset folder (config.json + weights) carries the vocabulary too.
    presets.save_to_preset(vae, tmp_path / "preset", {"description": "t"})
    from_preset = presets.from_preset(str(tmp_path / "preset"))
    assert from_preset.reconstruct(CORPUS[:6]) == vae.reconstruct(CORPUS[:6])


# One worker per backend run, around the ring (tensorflow -> jax -> torch ->
# tensorflow): every backend saves and every backend loads once per CI run.
@pytest.mark.slow
def test_cross_backend_load(vae, tmp_path):
    reports = run_on_other_backends(vae, np.array(CORPUS[:8]), "encode", tmp_path, atol=1e-4)
    assert tuple(reports) == ring_backends(1)
    assert all(np.isfinite(report["loss"]) for report in reports.values())


def test_initialize_from_language_model_starts_at_the_language_model():
    lm = trained(tiny(LSTMLanguageModel), epochs=2)
    model = tiny(embedding_dropout=0.5, output_dropout=0.5)
    model.initialize_from_language_model(lm)
    ids = model.tokenize(CORPUS[:6])
    expected = lm.decoder.predict_on_batch(ids)
    for z in (np.zeros((6, 2)), np.random.default_rng(0).normal(size=(6, 2)) * 3):
        with_z = model.decoder.predict_on_batch([ids, z.astype("float32")])
        np.testing.assert_allclose(with_z, expected, atol=1e-5)
    np.testing.assert_allclose(
        model.encoder.get_layer("embedding").embeddings.numpy(),
        lm.text_decoder.embedding.embeddings.numpy(),
    )
    # The weights that read z start at zero and training moves them.
    z_rows = model.text_decoder.lstm.cell.kernel.numpy()[model.embedding_dim :]
    assert z_rows.shape == (2, 32) and not z_rows.any()
    trained(model)
    assert np.abs(model.text_decoder.lstm.cell.kernel.numpy()[model.embedding_dim :]).max() > 1e-3
    assert np.abs(model.text_decoder.initial_cell.kernel.numpy()).max() > 1e-3


def test_tied_embeddings_train_save_and_start_a_vae(tmp_path):
    lm = trained(tiny(LSTMLanguageModel, tie_embeddings=True), epochs=2)
    assert lm.get_config()["tie_embeddings"]
    loaded = assert_saved_model_round_trip(lm, np.array(CORPUS[:4]), "log_likelihood", tmp_path)
    assert loaded.tie_embeddings
    model = tiny(tie_embeddings=True)
    model.initialize_from_language_model(lm)
    ids = model.tokenize(CORPUS[:6])
    with_z = model.decoder.predict_on_batch([ids, np.ones((6, 2), "float32")])
    np.testing.assert_allclose(with_z, lm.decoder.predict_on_batch(ids), atol=1e-5)
    with pytest.raises(ValueError, match="tie_embeddings is True"):
        tiny().initialize_from_language_model(lm)


def test_initialize_from_language_model_refuses_a_different_model():
    model = tiny()
    with pytest.raises(TypeError, match="LSTMLanguageModel"):
        model.initialize_from_language_model(tiny())
    with pytest.raises(ValueError, match="hidden_dim is 16"):
        model.initialize_from_language_model(tiny(LSTMLanguageModel, hidden_dim=16))
    other = Vocabulary.from_sentences(CORPUS + ["a new word"])
    with pytest.raises(ValueError, match="vocabulary differs"):
        model.initialize_from_language_model(
            LSTMLanguageModel(other, embedding_dim=8, hidden_dim=8)
        )


def test_bad_inputs_name_the_problem():
    model = tiny()
    with pytest.raises(TypeError, match="list of sentences"):
        model.reconstruct("the cat sat")
    with pytest.raises(ValueError, match="start with <bos>"):
        model.fit(np.zeros((4, 5), "int32"), verbose=0)
    with pytest.raises(ValueError, match="more than max_length=12"):
        model.fit([" ".join(["cat"] * 13)], verbose=0)
    with pytest.raises(ValueError, match="decoding"):
        model.decode(np.zeros((1, 2)), decoding="nucleus")
    with pytest.raises(ValueError, match="latents of shape"):
        model.decode(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="latent_dim"):
        TextVAE(VOCABULARY, latent_dim=0)
