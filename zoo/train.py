"""Trains a built-in preset from scratch and writes its preset folder.

Usage:

    python -m zoo.train vae_binarized_mnist [--epochs N] [--output DIR]
        [--eval-samples K] [--eval-images N] [--run-dir DIR]

The hyperparameters of each preset are in `RECIPES` below. A run keeps its
state in a run folder (`--run-dir`, by default under the Keras cache):
`keras.callbacks.BackupAndRestore` lets an interrupted run continue where it
stopped, the weights with the best validation ELBO are kept, and evaluation
results are cached per chunk. At the end the model is evaluated with the
project's own code (`VAE.log_likelihood`, `VAE.elbo`, `active_units`) and the
preset folder (`config.json`, `model.weights.h5`, `metadata.json`) is written
atomically to `--output` (default `zoo/<preset>`, the shipped preset: a
run with the smoke options below must name its own folder).

Short mode, as used by the tests:

    python -m zoo.train vae_binarized_mnist --epochs 1 --eval-samples 10 \
        --eval-images 100 --output /tmp/preset
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np

import keras_vae as kv
from keras_vae import presets
from keras_vae.metrics.active_units import active_units
from keras_vae.models import networks
from zoo import common

# Cheap re-check of the headline metric (tests/zoo/presets_metrics_test.py).
CHECK_SAMPLES = 100
CHECK_IMAGES = 1000
CHECK_SEED = 0
# Images whose posterior means are stored as a cross-backend reference.
REFERENCE_IMAGES = 4

RECIPES = {
    "vae_binarized_mnist": {
        "description": (
            "Convolutional VAE on statically binarized MNIST: a deep conv "
            "encoder (two 3x3 convs per stage + dense 512), 32 latent "
            "dimensions with a N(0, I) prior, and a sub-pixel conv decoder "
            "(dense 512, 64 and 16 channels, ~16M multiply-adds per image) "
            "with a Bernoulli likelihood."
        ),
        "dataset": "binarized_mnist",
        "splits": {"train": "train", "valid": "valid", "test": "test"},
        "model": {
            "input_shape": [28, 28, 1],
            "latent_dim": 32,
            "likelihood": "bernoulli",
            "kl_warmup_steps": 4000,
        },
        "encoder": {
            "builder": "deep_conv_encoder",
            "hidden_dims": [32, 64],
            "dense_units": 512,
        },
        "decoder": {
            "builder": "lean_conv_decoder",
            "hidden_dims": [16, 64],
            "dense_units": 512,
        },
        "optimizer": {
            "name": "adam",
            "learning_rate": 1e-3,
            "final_learning_rate": 1e-4,
        },
        "batch_size": 128,
        "epochs": 70,
        "early_stopping_patience": 15,
        "seed": 0,
        "eval_samples": 1000,
        "eval_images": 10000,
        "published": {
            "metric": "test NLL (nats)",
            "Burda et al. 2016, VAE (1 stochastic layer), k=5000": 86.76,
            "pythae benchmark, VAE": 89.78,
        },
    },
}


def build_model(recipe):
    """The untrained model of a recipe."""
    model_args = dict(recipe["model"])
    input_shape = tuple(model_args.pop("input_shape"))
    latent_dim = model_args["latent_dim"]
    encoder_args = dict(recipe["encoder"])
    decoder_args = dict(recipe["decoder"])
    encoder = getattr(networks, encoder_args.pop("builder"))(input_shape, **encoder_args)
    decoder = getattr(networks, decoder_args.pop("builder"))(
        latent_dim, input_shape, **decoder_args
    )
    return kv.VAE(
        input_shape=input_shape,
        encoder=encoder,
        decoder=decoder,
        seed=recipe["seed"],
        **model_args,
    )


class _NegativeElbo(keras.callbacks.Callback):
    """Adds `val_neg_elbo` (reconstruction + full KL) to the epoch logs: the
    validation loss without the KL warm-up factor."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_kl_loss" in logs:
            logs["val_neg_elbo"] = logs["val_reconstruction_loss"] + logs["val_kl_loss"]


def _learning_rate(recipe, steps):
    opt = recipe["optimizer"]
    return keras.optimizers.schedules.CosineDecay(
        opt["learning_rate"],
        decay_steps=max(1, steps),
        alpha=opt["final_learning_rate"] / opt["learning_rate"],
    )


def train(recipe, epochs, run_dir, x_train, x_valid, stop_now=False):
    """Trains (or resumes) a run; returns the model with the best weights."""
    keras.utils.set_random_seed(recipe["seed"])
    model = build_model(recipe)
    batch_size = recipe["batch_size"]
    steps = epochs * -(-len(x_train) // batch_size)
    model.compile(optimizer=keras.optimizers.Adam(_learning_rate(recipe, steps)))
    done_path = run_dir / "done.json"
    keep_best = common.KeepBest(run_dir, monitor="val_neg_elbo")
    if not done_path.is_file() and stop_now:
        # Stop where an interrupted run is and keep its best weights.
        completed = common.backed_up_epochs(run_dir)
        common.write_json(
            done_path,
            {
                "train_seconds": common.EpochLog(run_dir).previous,
                "best": keep_best.record,
                "epochs_requested": epochs,
                "epochs_completed": completed,
                "stopped_early_by": "--evaluate-only",
            },
        )
    elif not done_path.is_file():
        log = common.EpochLog(run_dir)
        early_stopping = keras.callbacks.EarlyStopping(
            monitor="val_neg_elbo",
            patience=recipe["early_stopping_patience"],
            mode="min",
        )
        callbacks = [
            common.backup_and_restore(run_dir),
            _NegativeElbo(),
            keep_best,
            early_stopping,
            common.ResumeState(run_dir, {"early_stopping": early_stopping}),
            log,
        ]
        model.fit(
            x_train,
            validation_data=(x_valid,),
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            callbacks=callbacks,
            verbose=0,
        )
        common.write_json(
            done_path,
            {
                "train_seconds": log.seconds(),
                "best": keep_best.record,
                "epochs_requested": epochs,
                "epochs_completed": log.epochs_completed,
            },
        )
        common.remove_backup(run_dir)
    else:
        print(f"Training already done in {run_dir}; evaluating.", flush=True)
    best = Path(run_dir) / "best.weights.h5"
    if not best.is_file():
        raise RuntimeError(f"No best weights in {run_dir}: did training run?")
    fresh = build_model(recipe)
    fresh.load_weights(best)
    return fresh, json.loads(done_path.read_text())


def evaluate(model, run_dir, x_valid, x_test, eval_samples, eval_images, chunk=500):
    """The preset's metrics, with the project's own evaluation code.

    The ELBO and active units use the first `eval_images` test (and
    validation) images, all of them by default; so does the
    importance-sampled NLL,
    computed in chunks cached in the run folder (keyed by `eval_samples`
    and chunk), so a longer evaluation reuses a shorter one's chunks.
    """
    metrics = {}
    x_test_all = x_test
    x_test, x_valid = x_test[:eval_images], x_valid[:eval_images]
    metrics["test_elbo"] = float(np.mean(model.elbo(x_test, num_samples=1, seed=CHECK_SEED)))
    metrics["test_elbo_images"] = int(len(x_test))
    metrics["valid_elbo"] = float(np.mean(model.elbo(x_valid, num_samples=1, seed=CHECK_SEED)))
    metrics["valid_elbo_images"] = int(len(x_valid))
    metrics["active_units"] = active_units(model, x_test)
    metrics["active_units_threshold"] = 0.01
    metrics["latent_dim"] = model.latent_dim
    check_images = min(CHECK_IMAGES, eval_images, len(x_test))
    log_px = model.log_likelihood(x_test[:check_images], num_samples=CHECK_SAMPLES, seed=CHECK_SEED)
    metrics["check_nll"] = float(-np.mean(log_px))
    metrics["check_nll_importance_samples"] = CHECK_SAMPLES
    metrics["check_nll_images"] = check_images
    metrics["check_nll_seed"] = CHECK_SEED
    print(f"Cheap metrics: {json.dumps(metrics)}", flush=True)

    x_eval = x_test_all[:eval_images]
    cache = Path(run_dir) / f"nll_k{eval_samples}_chunk{chunk}.npz"
    parts = dict(np.load(cache)) if cache.is_file() else {}
    start = time.time()
    for begin in range(0, len(x_eval), chunk):
        key = str(begin)
        if key in parts and len(parts[key]) == len(x_eval[begin : begin + chunk]):
            continue
        chunk_start = time.time()
        parts[key] = model.log_likelihood(
            x_eval[begin : begin + chunk], num_samples=eval_samples, seed=CHECK_SEED
        )
        parts[f"seconds_{begin}"] = np.array(time.time() - chunk_start)
        tmp = cache.with_name(cache.stem + ".part.npz")
        np.savez(tmp, **parts)
        os.replace(tmp, cache)
        done = np.concatenate(
            [parts[str(b)] for b in range(0, begin + 1, chunk) if str(b) in parts]
        )
        print(
            f"NLL k={eval_samples}: images {begin}-{begin + len(parts[key])} "
            f"of {len(x_eval)} [{time.time() - start:.0f}s this run] mean over "
            f"{len(done)} images so far {-np.mean(done):.3f}",
            flush=True,
        )
    starts = range(0, len(x_eval), chunk)
    log_px = np.concatenate([parts[str(b)] for b in starts])
    metrics["test_nll"] = float(-np.mean(log_px))
    metrics["test_nll_stderr"] = float(np.std(log_px) / np.sqrt(len(log_px)))
    metrics["test_nll_importance_samples"] = int(eval_samples)
    metrics["test_nll_images"] = int(len(x_eval))
    metrics["test_nll_seed"] = CHECK_SEED
    metrics["test_nll_seconds"] = round(
        float(sum(parts[f"seconds_{b}"] for b in starts if f"seconds_{b}" in parts)), 1
    )
    return metrics


# Presets whose recipes live in a sibling script with its own options.
OTHER_SCRIPTS = {
    "vq_vae_mnist": "zoo.train_vq_vae",
    "beta_vae_sprites": "zoo.train_sprites",
    "vae_sprites": "zoo.train_sprites",
    "text_vae_ptb": "zoo.train_text",
    "lstm_lm_ptb": "zoo.train_text",
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in OTHER_SCRIPTS:
        # `python -m zoo.train <preset>` reproduces every preset.
        import importlib

        return importlib.import_module(OTHER_SCRIPTS[argv[0]]).main(argv)
    parser = argparse.ArgumentParser(prog="python -m zoo.train", description=__doc__.split("\n")[0])
    parser.add_argument("preset", choices=sorted([*RECIPES, *OTHER_SCRIPTS]))
    parser.add_argument("--epochs", type=common.positive_int, default=None)
    parser.add_argument("--output", default=None, help="preset folder to write")
    parser.add_argument("--eval-samples", type=common.positive_int, default=None)
    parser.add_argument("--eval-images", type=common.positive_int, default=None)
    parser.add_argument("--run-dir", default=None, help="resumable run state")
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="stop an interrupted run where it is and evaluate its best "
        "weights (recorded in the metadata)",
    )
    parser.add_argument(
        "--train-images",
        type=common.positive_int,
        default=None,
        help="train and validate on the first N training and validation images only (smoke tests)",
    )
    args = parser.parse_args(argv)

    recipe = RECIPES[args.preset]

    def given(value, default):
        return default if value is None else value

    epochs = given(args.epochs, recipe["epochs"])
    eval_samples = given(args.eval_samples, recipe["eval_samples"])
    eval_images = given(args.eval_images, recipe["eval_images"])
    train_images = args.train_images
    output = common.output_folder(
        parser,
        args.preset,
        args.output,
        {
            "--train-images": args.train_images is not None,
            "--eval-samples": args.eval_samples is not None,
            "--eval-images": args.eval_images is not None,
        },
    )
    run_dir = common.run_folder(args.preset, [recipe, epochs, train_images], args.run_dir)
    commands = common.record_command(run_dir, "zoo.train", argv)
    wall_start = time.time()

    splits = recipe["splits"]
    (x_train, _), (x_valid, _), (x_test, _) = kv.datasets.load(
        recipe["dataset"],
        splits=(splits["train"], splits["valid"], splits["test"]),
    )
    if train_images:
        x_train, x_valid = x_train[:train_images], x_valid[:train_images]
    model, training = train(recipe, epochs, run_dir, x_train, x_valid, stop_now=args.evaluate_only)
    metrics = evaluate(model, run_dir, x_valid, x_test, eval_samples, eval_images)
    reference = x_test[:REFERENCE_IMAGES]
    z_mean, z_log_var = model.encode(reference)
    protocol = (
        f"importance-sampled log p(x) (IWAE bound, q(z|x) proposal) with "
        f"k={eval_samples} samples on the first {eval_images} test images"
    )
    if eval_samples < 5000:
        protocol += (
            f" (the published protocol uses k=5000; k={eval_samples} here "
            "because only a CPU was available)"
        )
    metadata = {
        "name": args.preset,
        "description": recipe["description"],
        "dataset": {
            "name": recipe["dataset"],
            "train_split": f"{splits['train']} ({len(x_train)})",
            "early_stopping_split": f"{splits['valid']} ({len(x_valid)})",
            "test_split": f"{splits['test']} ({len(x_test)})",
        },
        "training_command": commands[0],
        "commands": commands,
        "recipe": recipe,
        "epochs_requested": epochs,
        "epochs_completed": training.get("epochs_completed"),
        "stopped_early_by": training.get("stopped_early_by"),
        "best_epoch": training["best"]["epoch"],
        "best_val_neg_elbo": training["best"]["val_neg_elbo"],
        "train_seconds": round(training["train_seconds"], 1),
        "wall_seconds_this_invocation": round(time.time() - wall_start, 1),
        "hardware": common.hardware(),
        "trained_on_backend": keras.backend.backend(),
        "metrics": metrics,
        "nll_protocol": protocol,
        "published": recipe["published"],
        "reference_encode": {
            "test_images": f"x_test[:{REFERENCE_IMAGES}]",
            "z_mean": np.asarray(z_mean).tolist(),
            "z_log_var": np.asarray(z_log_var).tolist(),
        },
    }
    metadata = presets.save_to_preset(model, output, metadata)
    print(
        json.dumps({"output": str(output), "metrics": metrics}, indent=2),
        flush=True,
    )
    return metadata


if __name__ == "__main__":
    main()
