import json
import shutil

import numpy as np
import pytest

import keras_vae as kv
from keras_vae.runner.families import text
from zoo import rechecks, recipes, render_tables, train, train_text

SMOKE = ["--epochs", "1", "--train-sentences", "96", "--valid-sentences", "32"]
SMOKE += ["--eval-samples", "2", "--eval-sentences", "8"]
SMOKE += ["--override", "hidden_dim=8", "--override", "embedding_dim=8"]


@pytest.fixture(scope="module")
def lm_preset(tmp_path_factory):
    """A smoke run of the language model baseline (the VAE's decoder init)."""
    folder = tmp_path_factory.mktemp("lm")
    args = ["lstm_lm_ptb", *SMOKE, "--output", str(folder / "lm")]
    train.main(args + ["--run-dir", str(folder / "run")])
    return folder / "lm"


@pytest.mark.slow
def test_smoke_run_writes_a_preset_that_maps_strings_to_strings(tmp_path, lm_preset):
    output, run_dir = tmp_path / "preset", tmp_path / "run"
    args = ["text_vae_ptb", *SMOKE, "--override", "latent_dim=4"]
    args += ["--output", str(output), "--run-dir", str(run_dir)]
    args += ["--decoder-init", str(lm_preset)]
    metadata = train_text.main(args)
    model = kv.TextVAE.from_preset(output)
    stored = json.loads((output / "metadata.json").read_text())
    # The whole training split's vocabulary (10k words), even in a smoke run.
    assert model.latent_dim == 4 and model.vocabulary.size >= 10_000
    assert model.vocabulary.size == stored["dataset"]["vocabulary_size"]
    assert stored["recipe"]["model"]["hidden_dim"] == 8
    assert stored["epochs_completed"] == 1 and stored["best_epoch"] == 1
    lm_metadata = json.loads((lm_preset / "metadata.json").read_text())
    assert stored["decoder_init"] == {
        "preset": str(lm_preset),
        "sha256": lm_metadata["sha256"],
        "test_perplexity": lm_metadata["metrics"]["perplexity"],
    }
    metrics = stored["metrics"]
    assert metrics["perplexity"] > 1 and np.isfinite(metrics["nll"])
    assert metrics["kl"] >= 0 and 0 <= metrics["active_units"] <= 4
    assert metrics["check_sentences"] == 8 and metrics["check_perplexity"] > 1
    (sentence,) = model.reconstruct(["the dollar rose against the yen"])
    assert isinstance(sentence, str)
    examples = stored["examples"]
    assert len(examples["homotopy"]) == 5 and len(examples["samples"]) == 5
    assert stored["training_command"].startswith("python -m zoo.train_text text_vae_ptb")
    assert stored["best_val_neg_elbo"] == stored["last_epoch_logs"]["val_neg_elbo"]
    assert "mr. &lt;unk&gt; is chairman" in render_tables.examples_markdown(stored)
    # The patience counters are kept for a resumed run (runner.ResumeState).
    state = json.loads((run_dir / "callback_state.json").read_text())
    assert set(state["1"]) == {"lr_decay", "early_stopping", "random_states"}
    # Latent noise, 3 dropouts (and the LSTM layers' own, unused).
    assert len(state["1"]["random_states"]) >= 4
    checks = rechecks.recheck_text_metrics(output)
    assert checks["check_perplexity"][0] == metrics["check_perplexity"]
    # A wrong figure in the metadata is caught.
    tampered = tmp_path / "tampered"
    shutil.copytree(output, tampered)
    stored["metrics"]["check_perplexity"] *= 1.1
    (tampered / "metadata.json").write_text(json.dumps(stored))
    with pytest.raises(AssertionError, match="check_perplexity"):
        rechecks.recheck_text_metrics(tampered)
    # A second call reuses the finished run and its cached likelihoods.
    again = train_text.main(args)
    assert again["metrics"]["nll"] == metadata["metrics"]["nll"]


@pytest.mark.slow
def test_language_model_baseline_smoke_run(lm_preset):
    model = kv.from_preset(lm_preset)
    assert isinstance(model, kv.LSTMLanguageModel)
    assert all(isinstance(s, str) for s in model.sample(2, seed=0))
    # A language model's likelihood is exact: the re-check matches to rounding.
    ((stored, again),) = rechecks.recheck_text_metrics(lm_preset).values()
    np.testing.assert_allclose(again, stored, rtol=1e-4)


def test_override_must_name_a_model_argument(capsys):
    with pytest.raises(SystemExit):
        train_text.main(["text_vae_ptb", "--override", "hidden_size=8"])
    assert "'hidden_size' is not one of" in capsys.readouterr().err


def test_override_takes_any_constructor_argument():
    # Not only the ones the recipe spells out: experiments such as tied
    # embeddings need no recipe edit.
    for name in ("text_vae_ptb", "lstm_lm_ptb"):
        recipe = recipes.load(name)
        allowed = text.model_arguments(recipe)
        assert set(recipe["model"]) <= set(allowed), name
        assert "tie_embeddings" in allowed and "seed" not in allowed


def test_results_table_prints_both_models_from_their_metadata():
    lm = {"name": "lstm_lm_ptb", "metrics": {"perplexity": 104.123, "nll": 101.5}}
    vae = {
        "name": "text_vae_ptb",
        "recipe": {"model": {"latent_dim": 32}},
        "metrics": {
            "perplexity": 101.456,
            "nll": 100.9,
            "elbo": -103.25,
            "kl": 8.004,
            "mutual_information": 4.5,
            "active_units": 11,
        },
    }
    table = render_tables.results_table(vae, lm).splitlines()
    assert table[2] == "| LSTM LM (`lstm_lm_ptb`) | 104.12 | 101.50 |  |  |  |  |"
    assert table[3] == (
        "| LSTM VAE (`text_vae_ptb`) | 101.46 | 100.90 | -103.25 | 8.00 | 4.50 | 11 / 32 |"
    )


def test_examples_markdown_escapes_words_and_marks_empty_sentences():
    vae = {
        "examples": {
            "inputs": ["mr. <unk> said", "a | b", "the end"],
            "reconstructions_greedy": ["mr. <unk> said", "", "the end"],
            "reconstructions_beam": ["mr. <unk> says", "a b", "the end"],
            "samples": ["one", "two"],
            "samples_greedy": ["uno", "dos"],
            "homotopy": ["mr. <unk> said", "the end"],
        }
    }
    text = render_tables.examples_markdown(vae).splitlines()
    assert text[2] == "| mr. &lt;unk&gt; said | mr. &lt;unk&gt; said | mr. &lt;unk&gt; says |"
    assert text[3] == "| a \\| b | (empty) | a b |"
    assert "| two | dos |" in text
    assert text[-2:] == ["1. mr. &lt;unk&gt; said", "2. the end"]


def test_a_missing_decoder_init_says_what_to_train(tmp_path):
    with pytest.raises(RuntimeError, match="Train it first"):
        text.load_decoder_init(str(tmp_path / "no_such_preset"))


def test_decoder_init_needs_a_recipe_with_a_decoder_to_initialize(capsys):
    with pytest.raises(SystemExit):
        train_text.main(["lstm_lm_ptb", "--decoder-init", "lstm_lm_ptb"])
    assert "has no decoder to initialize" in capsys.readouterr().err
