"""Evaluation of sentence models: perplexity, KL, I(x; z), active units."""

import numpy as np

from keras_vae.metrics.active_units import active_units
from keras_vae.metrics.mutual_information import (
    mutual_information_from_posteriors,
)


def perplexity_from_log_likelihoods(log_likelihoods, num_tokens):
    """Per-word perplexity `exp(-sum log p(x) / sum tokens)`.

    Args:
        log_likelihoods: array `(n,)`, `log p(x)` of each sentence (nats).
        num_tokens: array `(n,)`, predicted tokens per sentence (its words
            plus `<eos>`, as in Mikolov's PTB protocol).

    Example:

    >>> round(perplexity_from_log_likelihoods([-2 * np.log(10.0)], [2]), 6)
    10.0
    """
    log_likelihoods = np.asarray(log_likelihoods, dtype="float64")
    num_tokens = np.asarray(num_tokens, dtype="float64")
    if log_likelihoods.shape != num_tokens.shape or not num_tokens.size:
        raise ValueError(
            "Expected one log-likelihood per sentence and one token count per "
            f"sentence; got shapes {log_likelihoods.shape} and "
            f"{num_tokens.shape}."
        )
    return float(np.exp(-log_likelihoods.sum() / num_tokens.sum()))


def perplexity(model, sentences, num_samples=500, seed=0):
    """Per-word test perplexity of a `TextVAE` or `LSTMLanguageModel`.

    From `model.log_likelihood(sentences, num_samples)`: importance-sampled
    for a VAE (an upper bound on the true perplexity that tightens as
    `num_samples` grows), exact for a language model.
    """
    log_px = model.log_likelihood(sentences, num_samples=num_samples, seed=seed)
    return perplexity_from_log_likelihoods(log_px, model.num_tokens(sentences))


def evaluate_text_model(
    model, sentences, num_samples=500, seed=0, log_likelihoods=None
):
    """The text VAE evaluation of He et al. (2019) in one dict.

    Keys: `nll` (mean `-log p(x)` per sentence, nats, `num_samples`
    importance samples), `nll_stderr`, `perplexity` (per word, `<eos>`
    counted), `num_sentences`, `num_tokens`; for a model with a latent also
    `elbo` (mean, one sample), `kl` (mean `KL(q(z|x) || p(z))`),
    `mutual_information` (nats) and `active_units` (threshold 0.01).

    Args:
        model: a `TextVAE` or `LSTMLanguageModel`.
        sentences: list of str, e.g. the test split.
        num_samples: int. Importance samples of `log_likelihood`.
        seed: int. Seed of every random draw. Defaults to `0`.
        log_likelihoods: optional array `(n,)`: `log p(x)` already
            computed with `num_samples` samples (skips that costly step).

    Example:

    >>> from keras_vae.layers import Vocabulary
    >>> from keras_vae.models import TextVAE
    >>> corpus = ["the cat sat", "a dog ran", "the dog sat"]
    >>> model = TextVAE(Vocabulary.from_sentences(corpus), latent_dim=2,
    ...                 embedding_dim=4, hidden_dim=4, seed=0)
    >>> results = evaluate_text_model(model, corpus, num_samples=4)
    >>> sorted(results)[:4]
    ['active_units', 'elbo', 'importance_samples', 'kl']
    """
    from keras_vae.models.text_vae import TextVAE

    has_latent = isinstance(model, TextVAE)
    log_px = log_likelihoods
    if log_px is None:
        log_px = model.log_likelihood(
            sentences, num_samples=num_samples, seed=seed
        )
    log_px = np.asarray(log_px, dtype="float64")
    tokens = model.num_tokens(sentences)
    results = {
        "nll": float(-np.mean(log_px)),
        "nll_stderr": float(np.std(log_px) / np.sqrt(len(log_px))),
        "perplexity": perplexity_from_log_likelihoods(log_px, tokens),
        "importance_samples": int(num_samples) if has_latent else 0,
        "num_sentences": int(len(log_px)),
        "num_tokens": int(tokens.sum()),
    }
    if has_latent:
        z_mean, z_log_var = model.encode(sentences)
        kl = 0.5 * np.sum(
            np.exp(z_log_var) + np.square(z_mean) - 1.0 - z_log_var, axis=-1
        )
        results["elbo"] = float(np.mean(model.elbo(sentences, seed=seed)))
        results["kl"] = float(np.mean(kl))
        results["mutual_information"] = mutual_information_from_posteriors(
            z_mean, z_log_var, seed=seed
        )
        results["active_units"] = active_units(model, sentences)
    return results
