"""Trains a text preset (Penn Treebank) from scratch and writes its folder.

Usage:

    python -m zoo.train_text text_vae_ptb [--epochs N] [--output DIR]
        [--eval-samples K] [--eval-sentences N] [--train-sentences N]
        [--run-dir DIR]
    python -m zoo.train_text lstm_lm_ptb     # the language-model baseline

`text_vae_ptb` starts its decoder from the `lstm_lm_ptb` preset, so the
language model is trained first (`--decoder-init FOLDER` names another).
The hyperparameters are in `RECIPES` below; the sibling of `zoo/train.py`
(image presets) for sentence models. A run keeps its state in a run folder
(`--run-dir`, by default under the Keras cache): `BackupAndRestore` lets an
interrupted run continue where it stopped, the weights with the best
validation ELBO (full KL weight) are kept, and the importance-sampled test
log-likelihoods are cached per chunk. The model is then evaluated with the
project's own code (`TextVAE.log_likelihood`, `evaluate_text_model`: NLL,
per-word perplexity, KL, mutual information, active units) and the preset
folder is written atomically to `--output` (default `zoo/<preset>`, the
shipped preset: a run with the smoke options or `--override` must name its
own folder), with reconstructions, samples and a homotopy in its metadata.

Short mode (a smoke run):

    python -m zoo.train_text text_vae_ptb --epochs 1 --train-sentences 200 \
        --valid-sentences 100 --eval-samples 4 --eval-sentences 50 \
        --override hidden_dim=16 --override embedding_dim=16 \
        --decoder-init /tmp/lm_preset --output /tmp/text_preset

(after the same smoke run of `lstm_lm_ptb` with `--output /tmp/lm_preset`).
"""

import argparse
import inspect
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

import keras_vae as kv
from keras_vae import presets
from keras_vae.datasets.text_batches import TextBatches
from keras_vae.metrics import evaluate_text_model
from zoo import common

# The cheap re-check CI runs on every backend (seconds): k=20 importance
# samples on the first 200 test sentences.
CHECK_SAMPLES = 20
CHECK_SENTENCES = 200
CHECK_SEED = 0
EXAMPLES = [
    "the company said it expects to report a loss for the third quarter",
    "mr. <unk> is chairman of the board",
    "the dollar rose against the yen",
]

# Tied input and output embeddings (Press & Wolf 2017; Inan et al. 2017):
# 2.1 nats per sentence better on validation than the untied decoder (104.38
# at its best epoch, early-stopped at 30) and 2.6M fewer parameters.
_DECODER = {"embedding_dim": 256, "hidden_dim": 256, "tie_embeddings": True}
_STEPS_PER_EPOCH = 1315  # 42,068 sentences / batch 32

RECIPES = {
    "text_vae_ptb": {
        "description": (
            "LSTM VAE on Penn Treebank (Bowman et al. 2016): 1-layer LSTM "
            "encoder and decoder (256 units, 256-d embeddings, the decoder's "
            "softmax tied to its embeddings), 32 latent "
            "dimensions fed to the decoder's initial state and at every "
            "step; the decoder starts from the trained lstm_lm_ptb; KL "
            "annealed from 0.1 to 1 over 2 epochs and 0.125 free nats per "
            "dimension (4 nats in all) against posterior collapse."
        ),
        "class": "TextVAE",
        # The preset whose weights start the decoder
        # (`TextVAE.initialize_from_language_model`).
        "decoder_init": "lstm_lm_ptb",
        "model": {
            **_DECODER,
            "latent_dim": 32,
            "embedding_dropout": 0.5,
            "output_dropout": 0.5,
            "word_dropout": 0.0,
            "kl_warmup_steps": 2 * _STEPS_PER_EPOCH,
            "kl_warmup_start": 0.1,
            "free_bits": 0.125,
            "max_length": 100,
        },
        # 1e-4 (near the rate the language model ends with) left z nearly
        # unused after 2 epochs (KL 2.8, validation NLL 0.6 nats worse than
        # the language model's): the weights that read z start at zero and
        # need a larger rate.
        "optimizer": {"learning_rate": 1e-3, "clipnorm": 5.0},
        "lr_decay": {"factor": 0.5, "patience": 2, "min_learning_rate": 3e-5},
        "batch_size": 32,
        "epochs": 100,
        "early_stopping_patience": 4,
        "seed": 0,
        "eval_samples": 500,
        "eval_sentences": 3761,
        "targets": {
            "test perplexity (k=500 importance samples)": "<= 102",
            "KL (nats)": ">= 3",
            "active units": ">= 5",
        },
        "published": {
            "metric": "test perplexity on PTB",
            "Texar LSTM VAE (vae_text example)": 105.48,
        },
    },
    "lstm_lm_ptb": {
        "description": (
            "LSTM language model on Penn Treebank, the baseline of "
            "text_vae_ptb: the same decoder (256 units, 256-d embeddings "
            "tied to the softmax, dropout 0.5), vocabulary, training code "
            "and evaluation."
        ),
        "class": "LSTMLanguageModel",
        "model": {
            **_DECODER,
            "embedding_dropout": 0.5,
            "output_dropout": 0.5,
            "max_length": 100,
        },
        "optimizer": {"learning_rate": 1e-3, "clipnorm": 5.0},
        "lr_decay": {"factor": 0.5, "patience": 2, "min_learning_rate": 3e-5},
        "batch_size": 32,
        "epochs": 100,
        "early_stopping_patience": 4,
        "seed": 0,
        "eval_samples": 1,
        "eval_sentences": 3761,
        "targets": {},
        "published": {},
    },
}


def build_model(recipe, vocabulary):
    """The untrained model of a recipe."""
    cls = getattr(kv, recipe["class"])
    return cls(vocabulary, seed=recipe["seed"], **recipe["model"])


def model_arguments(recipe):
    """The hyperparameters `--override` may set: the constructor arguments
    of the recipe's class (other than the vocabulary and the seed)."""
    signature = inspect.signature(getattr(kv, recipe["class"]).__init__)
    return sorted(
        name
        for name, parameter in signature.parameters.items()
        if name not in ("self", "vocabulary", "seed")
        and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
    )


def compiled_model(recipe, vocabulary):
    """The untrained model of a recipe, compiled as training compiles it
    (Adam with the recipe's learning rate and gradient clipping)."""
    model = build_model(recipe, vocabulary)
    opt = recipe["optimizer"]
    model.compile(optimizer=keras.optimizers.Adam(opt["learning_rate"], clipnorm=opt["clipnorm"]))
    return model


def _validation_loss(logs):
    """Validation loss with the full KL weight (the negative ELBO)."""
    if "val_kl_loss" in logs:
        return logs["val_reconstruction_loss"] + logs["val_kl_loss"]
    return logs["val_loss"]


class _ValidationObjective(keras.callbacks.Callback):
    """Adds `val_objective` (negative ELBO, or the LM's NLL) to the logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_loss" in logs:
            logs["val_objective"] = _validation_loss(logs)


def load_decoder_init(preset):
    """The language model preset that starts a VAE's decoder."""
    try:
        return kv.LSTMLanguageModel.from_preset(preset)
    except (FileNotFoundError, ValueError) as error:
        raise RuntimeError(
            f"This recipe starts its decoder from the language model preset "
            f"{preset!r}, which could not be loaded ({error}). Train it first "
            f"(python -m zoo.train {preset}) or pass --decoder-init FOLDER."
        ) from error


def train(recipe, epochs, run_dir, vocabulary, train_sentences, valid, decoder_init=None):
    """Trains (or resumes) a run; returns the model with the best weights.

    `decoder_init`: a trained `LSTMLanguageModel` that starts the decoder
    of a text VAE (a resumed run continues from its checkpoint instead).
    """
    keras.utils.set_random_seed(recipe["seed"])
    model = compiled_model(recipe, vocabulary)
    if decoder_init is not None:
        model.initialize_from_language_model(decoder_init)
    done_path = Path(run_dir) / "done.json"
    keep_best = common.KeepBest(run_dir, monitor="val_objective")
    if not done_path.is_file():
        batches = TextBatches(
            train_sentences,
            model.tokenize,
            batch_size=recipe["batch_size"],
            seed=recipe["seed"],
            max_length=model.max_length,
        )
        # A resumed run gets the batches an uninterrupted one would.
        batches.epoch = common.backed_up_epochs(run_dir) or 0
        valid_batches = TextBatches(valid, model.tokenize, batch_size=256, shuffle=False)
        decay = recipe["lr_decay"]
        log = common.EpochLog(run_dir)
        schedule = {
            "lr_decay": keras.callbacks.ReduceLROnPlateau(
                monitor="val_objective",
                factor=decay["factor"],
                patience=decay["patience"],
                min_lr=decay["min_learning_rate"],
                mode="min",
            ),
            "early_stopping": keras.callbacks.EarlyStopping(
                monitor="val_objective",
                patience=recipe["early_stopping_patience"],
                mode="min",
            ),
        }
        callbacks = [
            common.backup_and_restore(run_dir),
            _ValidationObjective(),
            keep_best,
            *schedule.values(),
            common.ResumeState(run_dir, schedule),
            log,
        ]
        model.fit(
            batches,
            validation_data=valid_batches,
            epochs=epochs,
            callbacks=callbacks,
            verbose=0,
        )
        common.write_json(
            done_path,
            {
                "train_seconds": log.seconds(),
                "best": keep_best.record,
                "epochs_requested": epochs,
                "epochs_completed": common.backed_up_epochs(run_dir),
            },
        )
        common.remove_backup(run_dir)
    else:
        print(f"Training already done in {run_dir}; evaluating.", flush=True)
    best = Path(run_dir) / "best.weights.h5"
    if not best.is_file():
        raise RuntimeError(f"No best weights in {run_dir}: did training run?")
    fresh = build_model(recipe, vocabulary)
    fresh.load_weights(best)
    return fresh, json.loads(done_path.read_text())


def _cached_log_likelihood(model, sentences, samples, run_dir, chunk=500):
    """`model.log_likelihood` on `sentences`, cached per chunk."""
    cache = Path(run_dir) / f"ll_k{samples}_n{len(sentences)}.npz"
    parts = dict(np.load(cache)) if cache.is_file() else {}
    start = time.time()
    for begin in range(0, len(sentences), chunk):
        if str(begin) not in parts:
            parts[str(begin)] = model.log_likelihood(
                sentences[begin : begin + chunk],
                num_samples=samples,
                seed=CHECK_SEED,
            )
            tmp = cache.with_name(cache.stem + ".part.npz")
            np.savez(tmp, **parts)
            os.replace(tmp, cache)
            print(
                f"log p(x) k={samples}: "
                f"{min(begin + chunk, len(sentences))}/{len(sentences)} "
                f"[{time.time() - start:.0f}s]",
                flush=True,
            )
    return np.concatenate([parts[str(b)] for b in range(0, len(sentences), chunk)])


def evaluate(model, run_dir, test, eval_samples):
    """The preset's metrics, with the project's own evaluation code."""
    start = time.time()
    log_px = _cached_log_likelihood(model, test, eval_samples, run_dir)
    metrics = evaluate_text_model(
        model,
        test,
        num_samples=eval_samples,
        seed=CHECK_SEED,
        log_likelihoods=log_px,
    )
    metrics["seconds"] = round(time.time() - start, 1)
    metrics["check_perplexity"] = _check_perplexity(model, test)
    metrics["check_importance_samples"] = CHECK_SAMPLES
    metrics["check_sentences"] = len(test[:CHECK_SENTENCES])
    metrics["check_seed"] = CHECK_SEED
    return metrics


def _check_perplexity(model, test, sentences=CHECK_SENTENCES, samples=CHECK_SAMPLES):
    """Perplexity of the cheap fixed-seed re-check (`CHECK_*`)."""
    check = test[:sentences]
    log_px = model.log_likelihood(check, num_samples=samples, seed=CHECK_SEED)
    return kv.metrics.perplexity_from_log_likelihoods(log_px, model.num_tokens(check))


def reference_encode(model):
    """Posterior parameters of `EXAMPLES` (empty for a language model)."""
    if not model.latent_dim:
        return {}
    z_mean, z_log_var = model.encode(EXAMPLES)
    return {"sentences": EXAMPLES, "z_mean": z_mean.tolist(), "z_log_var": z_log_var.tolist()}


def recheck_metrics(preset, rtol=0.01, atol=1e-4):
    """Re-measures a text preset's cheap figures on this backend.

    Loads the preset, re-encodes its reference sentences (within `atol`),
    checks that greedy reconstructions are the stored ones and reruns the
    `check_perplexity` protocol (k=20 importance samples on the first 200
    test sentences, fixed seed: seconds on a CPU, what CI runs). Raises
    `AssertionError` naming the figure that differs (the perplexity by more
    than `rtol`, relative: other backends draw other importance samples).
    Returns `{"check_perplexity": (stored, recomputed)}`.

    Example:

    >>> recheck_metrics("text_vae_ptb")  # doctest: +SKIP
    {'check_perplexity': (101.2, 101.3)}
    """
    model = kv.from_preset(preset)
    metadata = model.preset_metadata
    reference = metadata["reference_encode"]
    if model.latent_dim:
        z_mean, z_log_var = model.encode(reference["sentences"])
        np.testing.assert_allclose(z_mean, reference["z_mean"], atol=atol)
        np.testing.assert_allclose(z_log_var, reference["z_log_var"], atol=atol)
        stored = metadata["examples"]["reconstructions_greedy"]
        again = model.reconstruct(reference["sentences"])
        assert again == stored, f"Preset {preset}: reconstructions {again} != stored {stored}"
    ((test, _),) = kv.datasets.load("ptb", ("test",))
    metrics = metadata["metrics"]
    stored = metrics["check_perplexity"]
    recomputed = _check_perplexity(
        model, test, metrics["check_sentences"], metrics["check_importance_samples"]
    )
    if abs(recomputed - stored) > rtol * stored:
        raise AssertionError(
            f"Preset {preset}: check_perplexity is {recomputed:.3f} here, "
            f"the metadata says {stored:.3f} (tolerance {rtol:.0%})."
        )
    return {"check_perplexity": (stored, recomputed)}


def results_table(vae, lm):
    """The README's Penn Treebank table, in Markdown, from two presets'
    metadata (`text_vae_ptb`'s and `lstm_lm_ptb`'s).

    Rounded as printed in the README, so a test can check that the README
    holds exactly this text and the table cannot drift from what was
    measured.
    """
    rows = [
        "| model | test PPL | NLL (nats) | ELBO | KL | MI | active units |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, metadata in (("LSTM LM", lm), ("LSTM VAE", vae)):
        m = metadata["metrics"]
        latent = ["", "", "", ""]  # a language model has no latent
        if "kl" in m:
            latent = [f"{m[k]:.2f}" for k in ("elbo", "kl", "mutual_information")]
            latent += [f"{m['active_units']} / {metadata['recipe']['model']['latent_dim']}"]
        rows.append(
            f"| {label} (`{metadata['name']}`) | {m['perplexity']:.2f} | "
            f"{m['nll']:.2f} | " + " | ".join(latent) + " |"
        )
    return "\n".join(rows) + "\n"


def _markdown(sentence):
    """`sentence` as Markdown table text (`<unk>` would read as HTML)."""
    return sentence.replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|") or "(empty)"


def examples_markdown(vae):
    """The README's reconstructions, samples and homotopy of the text VAE,
    in Markdown, from `text_vae_ptb`'s metadata (so a test can check that
    the README shows what the preset produces)."""
    ex = vae["examples"]

    def table(header, rows):
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(_markdown(s) for s in row) + " |" for row in rows]
        return lines

    lines = table(
        ("input", "greedy reconstruction", "beam reconstruction"),
        zip(ex["inputs"], ex["reconstructions_greedy"], ex["reconstructions_beam"]),
    )
    lines += ["", "Samples, z ~ N(0, I), seed 0:", ""]
    lines += table(("sampled words", "greedy words"), zip(ex["samples"], ex["samples_greedy"]))
    lines += ["", "Homotopy (greedy decoding of evenly spaced codes between two sentences):", ""]
    lines += [f"{i}. {_markdown(sentence)}" for i, sentence in enumerate(ex["homotopy"], 1)]
    return "\n".join(lines) + "\n"


def examples(model):
    """Reconstructions, samples and a homotopy for the README."""
    if not model.latent_dim:
        return {"samples": model.sample(5, seed=CHECK_SEED)}
    return {
        "inputs": EXAMPLES,
        "reconstructions_greedy": model.reconstruct(EXAMPLES),
        "reconstructions_beam": model.reconstruct(EXAMPLES, decoding="beam"),
        "samples": model.sample(5, seed=CHECK_SEED),
        "samples_greedy": model.sample(5, seed=CHECK_SEED, decoding="greedy"),
        "homotopy": model.interpolate(EXAMPLES[0], EXAMPLES[2], steps=5),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m zoo.train_text", description=__doc__.split("\n")[0]
    )
    parser.add_argument("preset", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=common.positive_int, default=None)
    parser.add_argument("--output", default=None, help="preset folder")
    parser.add_argument("--eval-samples", type=common.positive_int, default=None)
    parser.add_argument("--eval-sentences", type=common.positive_int, default=None)
    parser.add_argument("--run-dir", default=None, help="resumable state")
    parser.add_argument(
        "--decoder-init",
        default=None,
        metavar="PRESET",
        help="language model preset (name or folder) that starts the VAE's decoder, "
        "instead of the recipe's",
    )
    parser.add_argument(
        "--valid-sentences",
        type=common.positive_int,
        default=None,
        help="validate on the first N validation sentences (smoke runs)",
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a model hyperparameter (smoke runs, experiments), e.g. "
        "embedding_dropout=0.3 or tie_embeddings=false",
    )
    parser.add_argument(
        "--train-sentences",
        type=common.positive_int,
        default=None,
        help="train on the first N training sentences only (smoke runs)",
    )
    args = parser.parse_args(argv)
    recipe = RECIPES[args.preset]
    if args.override:
        recipe = {**recipe, "model": dict(recipe["model"])}
        allowed = model_arguments(recipe)
        for item in args.override:
            key, _, value = item.partition("=")
            if key not in allowed:
                parser.error(f"--override {item}: {key!r} is not one of {allowed}")
            recipe["model"][key] = json.loads(value)
    if args.decoder_init:
        if "decoder_init" not in recipe:
            parser.error(f"--decoder-init: {args.preset} has no decoder to initialize")
        recipe = {**recipe, "decoder_init": args.decoder_init}
    epochs = args.epochs or recipe["epochs"]
    eval_samples = args.eval_samples or recipe["eval_samples"]
    eval_sentences = args.eval_sentences or recipe["eval_sentences"]
    counts = (args.train_sentences, args.valid_sentences)
    output = common.output_folder(
        parser,
        args.preset,
        args.output,
        {
            "--override": bool(args.override),
            "--decoder-init": args.decoder_init is not None,
            "--train-sentences": args.train_sentences is not None,
            "--valid-sentences": args.valid_sentences is not None,
            "--eval-samples": args.eval_samples is not None,
            "--eval-sentences": args.eval_sentences is not None,
        },
    )
    run_dir = common.run_folder(args.preset, [recipe, epochs, counts], args.run_dir)
    commands = common.record_command(run_dir, "zoo.train_text", argv)
    wall_start = time.time()

    (train_all, _), (valid, _), (test, _) = kv.datasets.load(
        "ptb", splits=("train", "valid", "test")
    )
    # The vocabulary always comes from the whole training split, so a
    # smoke run's model has the preset's 10k vocabulary.
    vocabulary = kv.layers.Vocabulary.from_sentences(train_all, name="vocabulary")
    train_sentences = train_all[: args.train_sentences or len(train_all)]
    valid = valid[: args.valid_sentences or len(valid)]
    decoder_init = None
    if "decoder_init" in recipe:
        decoder_init = load_decoder_init(recipe["decoder_init"])
    model, training = train(
        recipe, epochs, run_dir, vocabulary, train_sentences, valid, decoder_init
    )
    test = test[:eval_sentences]
    metrics = evaluate(model, run_dir, test, eval_samples)
    metadata = {
        "name": args.preset,
        "description": recipe["description"],
        "dataset": {
            "name": "ptb",
            "train_split": f"train ({len(train_sentences)} sentences)",
            "early_stopping_split": f"valid ({len(valid)} sentences)",
            "test_split": f"test ({len(test)} sentences)",
            "vocabulary_size": vocabulary.size,
        },
        "training_command": commands[0],
        "commands": commands,
        "recipe": recipe,
        "epochs_requested": epochs,
        "epochs_completed": training.get("epochs_completed"),
        "best_epoch": training["best"]["epoch"],
        "best_val_objective": training["best"]["val_objective"],
        "train_seconds": round(training["train_seconds"], 1),
        "wall_seconds_this_invocation": round(time.time() - wall_start, 1),
        "trained_on_backend": keras.backend.backend(),
        "hardware": common.hardware(),
        "metrics": metrics,
        "examples": examples(model),
        "reference_encode": reference_encode(model),
        "published": recipe["published"],
        "targets": recipe["targets"],
    }
    if decoder_init is not None:
        lm = decoder_init.preset_metadata
        metadata["decoder_init"] = {
            "preset": recipe["decoder_init"],
            "sha256": lm["sha256"],
            "test_perplexity": lm["metrics"]["perplexity"],
        }
    presets.save_to_preset(model, output, metadata)
    print(json.dumps({"output": str(output), "metrics": metrics}, indent=2))
    return metadata


if __name__ == "__main__":
    main()
