"""The shipped Penn Treebank presets: recipe, targets, README, re-measured.

`text_vae_ptb` and its baseline `lstm_lm_ptb` load on this backend, map
strings to strings as their metadata says, and re-measure their cheap
perplexity (k = 20 importance samples on the first 200 test sentences,
exact for the language model, `zoo.rechecks.recheck_text_metrics`, seconds per
preset). The README's table and examples must be exactly what the metadata
renders (`zoo.render_tables`), and the README must say whether the VAE meets its targets.
"""

from pathlib import Path

import pytest

import keras_vae as kv
from keras_vae import presets
from zoo import rechecks, recipes, render_tables

NAMES = ("text_vae_ptb", "lstm_lm_ptb")
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("name", NAMES)
def test_preset_was_made_by_the_shipped_recipe(name):
    metadata = presets.load_metadata(name)
    assert metadata["recipe"] == recipes.as_trained(recipes.load(name))
    metrics = metadata["metrics"]
    # The whole test split: 3,761 sentences, 82,430 words and <eos>.
    assert metrics["num_sentences"] == 3761 and metrics["num_tokens"] == 82430
    assert metadata["best_epoch"] <= metadata["epochs_completed"] <= metadata["epochs_requested"]


def test_vae_was_evaluated_with_500_importance_samples():
    metrics = presets.load_metadata("text_vae_ptb")["metrics"]
    assert metrics["importance_samples"] == recipes.load("text_vae_ptb")["eval_samples"]
    assert metrics["importance_samples"] == 500


def test_the_vae_started_from_the_shipped_language_model():
    vae, lm = (presets.load_metadata(n) for n in NAMES)
    assert vae["decoder_init"]["preset"] == "lstm_lm_ptb"
    assert vae["decoder_init"]["sha256"] == lm["sha256"]


def test_importance_sampling_tightens_the_elbo():
    metrics = presets.load_metadata("text_vae_ptb")["metrics"]
    assert metrics["nll"] <= -metrics["elbo"]


def test_vae_uses_its_latent_code():
    # The collapse targets of issue 7: KL >= 3 nats, >= 5 active units.
    metrics = presets.load_metadata("text_vae_ptb")["metrics"]
    assert metrics["kl"] >= 3 and metrics["active_units"] >= 5
    assert metrics["mutual_information"] > 0


def test_readme_shows_what_the_presets_measured():
    vae, lm = (presets.load_metadata(n) for n in NAMES)
    readme = README.read_text()
    assert render_tables.results_table(vae, lm) in readme
    assert render_tables.examples_markdown(vae) in readme
    assert render_tables.main(["--check", str(README)]) == 0
    assert f"test perplexity **{lm['metrics']['perplexity']:.2f}**" in readme
    assert f"test perplexity **{vae['metrics']['perplexity']:.2f}**" in readme


def test_readme_says_whether_the_perplexity_target_is_met():
    perplexity = presets.load_metadata("text_vae_ptb")["metrics"]["perplexity"]
    met = "meets its perplexity target (<= 102)" in README.read_text()
    missed = "misses its perplexity target (<= 102)" in README.read_text()
    assert (met, missed) == ((True, False) if perplexity <= 102 else (False, True))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_preset_figures_are_real(name):
    # Raises AssertionError naming what differs: reference encodings,
    # greedy reconstructions (strings in, strings out) or the perplexity.
    ((stored, again),) = rechecks.recheck_text_metrics(name).values()
    assert abs(again - stored) <= 0.01 * stored
    model = kv.from_preset(name)
    examples = model.preset_metadata["examples"]
    assert model.sample(5, seed=0) == examples["samples"]
    if getattr(model, "latent_dim", 0):
        assert model.sample(5, seed=0, decoding="greedy") == examples["samples_greedy"]
        homotopy = model.interpolate(examples["inputs"][0], examples["inputs"][2], steps=5)
        assert homotopy == examples["homotopy"]
