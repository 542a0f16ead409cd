import re

import keras
import numpy as np
import pytest

from keras_vae.layers import Vocabulary
from keras_vae.models import VAE, VQVAE, BetaVAE, LSTMLanguageModel, TextVAE, TransformerPrior
from keras_vae.models.generative_model import check_count

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


# ----------------------------------------------------------------------
# Counts and latents: refused with an error, never a wrong answer.


@pytest.fixture(scope="module")
def tiny_models():
    vocabulary = Vocabulary.from_sentences(CORPUS)
    text = dict(embedding_dim=4, hidden_dim=4, seed=0, max_length=8)
    return {
        "vae": VAE(input_shape=(4,), latent_dim=2, architecture="mlp", hidden_dims=(4,)),
        "beta_vae": BetaVAE(input_shape=(4,), latent_dim=2, architecture="mlp", hidden_dims=(4,)),
        "vq_vae": VQVAE(
            input_shape=(4, 4, 1),
            num_embeddings=4,
            embedding_dim=2,
            hidden_dims=(2,),
            num_residual_blocks=0,
        ),
        "prior": TransformerPrior((2, 2), 4, embed_dim=4, num_layers=1, num_heads=1),
        "lm": LSTMLanguageModel(vocabulary, **text),
        "text_vae": TextVAE(vocabulary, latent_dim=2, **text),
    }


IMAGES = np.full((3, 4), 0.5, "float32")
GRIDS = np.full((3, 4, 4, 1), 0.5, "float32")
CODES = np.zeros((3, 2, 2), "int32")
Z = np.zeros((3, 2), "float32")
SENTENCES = ["the cat", "the old cat sat"]

# (model, verb, args, keyword arguments): one bad count per case.
BAD_COUNTS = [
    ("vae", "encode", (IMAGES,), {"batch_size": 0}),
    ("vae", "decode", (Z,), {"batch_size": -1}),
    ("vae", "reconstruct", (IMAGES,), {"batch_size": 2.5}),
    ("vae", "sample", (0,), {}),
    ("vae", "sample", (2,), {"batch_size": 0}),
    ("vae", "elbo", (IMAGES,), {"num_samples": -1}),
    ("vae", "elbo", (IMAGES,), {"num_samples": 1.5}),
    ("vae", "elbo", (IMAGES,), {"batch_size": 0}),
    ("vae", "log_likelihood", (IMAGES,), {"num_samples": 0}),
    ("vae", "log_likelihood", (IMAGES,), {"batch_size": -2}),
    ("vae", "log_likelihood", (IMAGES,), {"max_decode": 0}),
    ("vae", "anomaly_score", (IMAGES,), {"num_samples": 2.5}),
    ("vae", "anomaly_score", (IMAGES,), {"batch_size": 0}),
    ("beta_vae", "elbo", (IMAGES,), {"num_samples": -1}),
    ("beta_vae", "sample", (True,), {}),
    ("vq_vae", "encode", (GRIDS,), {"batch_size": 0}),
    ("vq_vae", "decode_indices", (CODES,), {"batch_size": -1}),
    ("vq_vae", "reconstruct", (GRIDS,), {"batch_size": 0}),
    ("vq_vae", "sample", (-3,), {}),
    ("prior", "sample", (-1,), {}),
    ("prior", "sample", (2,), {"batch_size": 0}),
    ("prior", "log_prob", (CODES,), {"batch_size": 0}),
    ("prior", "bits_per_code", (CODES,), {"batch_size": 1.5}),
    ("lm", "sample", (0,), {}),
    ("lm", "sample", (2,), {"decoding": "beam", "beam_width": 0}),
    ("lm", "sample", (2,), {"max_length": -1}),
    ("lm", "sample", (2,), {"batch_size": 0}),
    ("lm", "log_likelihood", (SENTENCES,), {"num_samples": 0}),
    ("lm", "log_likelihood", (SENTENCES,), {"max_decode": 0}),
    ("text_vae", "encode", (SENTENCES,), {"batch_size": 0}),
    ("text_vae", "decode", (Z,), {"decoding": "beam", "beam_width": -1}),
    ("text_vae", "decode", (Z,), {"max_length": 0}),
    ("text_vae", "decode", (Z,), {"batch_size": 0}),
    ("text_vae", "reconstruct", (SENTENCES,), {"batch_size": 0}),
    ("text_vae", "sample", (-1,), {}),
    ("text_vae", "interpolate", ("the cat", "a cat"), {"steps": 2.5}),
    ("text_vae", "elbo", (SENTENCES,), {"num_samples": -1}),
    ("text_vae", "elbo", (SENTENCES,), {"batch_size": 0}),
    ("text_vae", "log_likelihood", (SENTENCES,), {"num_samples": 0}),
    ("text_vae", "log_likelihood", (SENTENCES,), {"batch_size": 0}),
    ("text_vae", "log_likelihood", (SENTENCES,), {"max_decode": -5}),
]


@pytest.mark.parametrize(
    "name, verb, args, kwargs",
    BAD_COUNTS,
    ids=[f"{m}.{v}:{next(iter(k), 'num_samples')}" for m, v, _, k in BAD_COUNTS],
)
def test_bad_counts_are_refused_naming_the_argument_and_value(
    tiny_models, name, verb, args, kwargs
):
    # `elbo(num_samples=-1)` used to return -KL.
    argument, value = next(iter(kwargs.items()), ("num_samples", args[0]))
    if argument == "decoding":
        argument, value = list(kwargs.items())[1]
    message = f"`{argument}` must be a positive integer, got {value!r}."
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(tiny_models[name], verb)(*args, **kwargs)


def test_check_count():
    assert check_count("n", 3) == 3 and check_count("n", np.int64(2)) == 2
    assert check_count("n", 4.0) == 4 and check_count("n", None, allow_none=True) is None
    for bad in (0, -1, 2.5, float("nan"), float("inf"), True, "3", None):
        with pytest.raises(ValueError, match="`n` must be a positive integer"):
            check_count("n", bad)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_decoding_non_finite_latents_is_refused(tiny_models, bad):
    z = np.zeros((2, 2), "float32")
    z[1, 0] = bad
    for name in ("vae", "beta_vae", "text_vae"):
        with pytest.raises(ValueError, match="1 NaN or infinite"):
            tiny_models[name].decode(z)
    with pytest.raises(ValueError, match="latents of shape"):
        tiny_models["vae"].decode(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="numeric latents"):
        tiny_models["text_vae"].decode(np.array([["a", "b"]]))
    vq_vae = tiny_models["vq_vae"]
    for indices, message in ((CODES + 4, r"\[0, 4\)"), (CODES - 1, r"\[0, 4\)")):
        with pytest.raises(ValueError, match=message):
            vq_vae.decode_indices(indices)
    with pytest.raises(ValueError, match="integer code indices"):
        vq_vae.decode_indices(np.full((1, 2, 2), bad))


def test_batched_verbs_record_no_autograd_graph():
    # `encode`, `decode`, `sample`, `elbo`, ... run eagerly through
    # `_run_batched`, under `training.inference()`: on torch no autograd
    # graph, which costs memory and time for nothing.
    vae = VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,), seed=0)
    recorded = []

    def encode(xb):
        z_mean, _ = vae.encoder(xb)
        recorded.append(bool(getattr(z_mean, "requires_grad", False)))
        return z_mean

    codes = vae._run_batched(encode, [np.zeros((5, 4, 4, 1), "float32")], batch_size=2)
    assert codes.shape == (5, 2)
    assert recorded == [False, False, False]
