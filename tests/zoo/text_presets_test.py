"""The shipped Penn Treebank preset `lstm_lm_ptb`: recipe, README, re-measured.

The preset loads on this backend, maps strings to strings and re-measures
its cheap perplexity (the first 200 test sentences, exact for a language
model, `zoo.train_text.recheck_metrics`, seconds). `text_vae_ptb`, which
starts from it, is not trained yet (docs/text_vae.md).
"""

from pathlib import Path

import pytest

import keras_vae as kv
from keras_vae import presets
from zoo import train_text

README = Path(__file__).resolve().parents[2] / "README.md"


def test_language_model_was_made_by_the_shipped_recipe():
    metadata = presets.load_metadata("lstm_lm_ptb")
    assert metadata["recipe"] == train_text.RECIPES["lstm_lm_ptb"]
    metrics = metadata["metrics"]
    assert metrics["num_sentences"] == 3761 and metrics["num_tokens"] == 82430
    # Early stopping ended the run, on the best validation epoch's weights.
    assert metadata["best_epoch"] < metadata["epochs_completed"] < metadata["epochs_requested"]


def test_readme_shows_the_measured_perplexity():
    metrics = presets.load_metadata("lstm_lm_ptb")["metrics"]
    assert f"test perplexity **{metrics['perplexity']:.2f}**" in README.read_text()


@pytest.mark.slow
def test_language_model_figures_are_real():
    # Raises AssertionError if the perplexity differs from the metadata.
    ((stored, again),) = train_text.recheck_metrics("lstm_lm_ptb").values()
    assert abs(again - stored) <= 1e-3 * stored
    model = kv.from_preset("lstm_lm_ptb")
    samples = model.sample(5, seed=0)
    assert samples == model.preset_metadata["examples"]["samples"]
