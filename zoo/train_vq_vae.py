"""Trains the VQ-VAE preset (and its prior) from scratch; writes its folder.

Usage:

    python -m zoo.train_vq_vae vq_vae_mnist [--epochs N] [--prior-epochs N]
        [--output DIR] [--run-dir DIR] [--train-images N] [--test-images N]

The sibling of `zoo/train.py` for the VQ-VAE, whose training has two
stages: the VQ-VAE (`VQVAE.fit`), then the autoregressive prior over its
codes (`VQVAE.fit_prior`). The hyperparameters are in `RECIPES` below. A run
keeps its state in a run folder (`--run-dir`, by default under the Keras
cache): `keras.callbacks.BackupAndRestore` lets an interrupted stage continue
where it stopped, and a finished stage is not run again. The model is then
evaluated with the project's own code on the MNIST test set (reconstruction
MSE, codebook perplexity and usage, prior NLL in bits per code), a grid of
samples is written to `samples.png`, and the preset folder (`config.json`,
`model.weights.h5`, `metadata.json`) is written atomically to `--output`
(default `zoo/<preset>`, the shipped preset: a run with the smoke options
below must name its own folder).

Short mode (a smoke run):

    python -m zoo.train_vq_vae vq_vae_mnist --epochs 1 --prior-epochs 1 \
        --train-images 2000 --test-images 1000 --output /tmp/vq_preset
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

import keras
import numpy as np

import keras_vae as kv
from keras_vae import presets
from zoo import common

# Cheap re-check of the headline figures (tests/zoo/vq_vae_preset_test.py).
CHECK_IMAGES = 1000
CHECK_SEED = 0
REFERENCE_IMAGES = 4
NUM_SAMPLES = 64

RECIPES = {
    "vq_vae_mnist": {
        "description": (
            "VQ-VAE (van den Oord et al. 2017) on MNIST in [0, 1]: conv "
            "encoder/decoder with residual blocks, a 7x7 grid of codes from "
            "a 128-code EMA codebook (decay 0.99, dead-code restarts), "
            "Gaussian (MSE) reconstruction; a 2-layer causal Transformer "
            "prior over the 49 codes for sampling."
        ),
        "dataset": "mnist",
        "model": {
            "input_shape": [28, 28, 1],
            "num_embeddings": 128,
            "embedding_dim": 16,
            "hidden_dims": [16, 32],
            "num_residual_blocks": 2,
            "residual_hidden_dim": 16,
            "commitment_cost": 0.25,
            "use_ema": True,
            "decay": 0.99,
            "dead_code_threshold": 1.0,
            # Pixel variance of the MNIST training set (std 0.3081).
            "data_variance": 0.0949,
        },
        "prior": {
            "embed_dim": 64,
            "num_layers": 2,
            "num_heads": 4,
            "mlp_dim": 128,
            "dropout": 0.0,
        },
        "optimizer": {"learning_rate": 1e-3, "final_learning_rate": 1e-4},
        "prior_optimizer": {
            "learning_rate": 1e-3,
            "final_learning_rate": 1e-4,
        },
        "batch_size": 128,
        "epochs": 1,
        "prior_epochs": 3,
        "seed": 0,
    },
}


def build_model(recipe):
    """The untrained VQ-VAE of a recipe, with its (untrained) prior."""
    args = dict(recipe["model"])
    model = kv.VQVAE(
        input_shape=tuple(args.pop("input_shape")),
        hidden_dims=tuple(args.pop("hidden_dims")),
        seed=recipe["seed"],
        **args,
    )
    model.set_prior(
        kv.TransformerPrior(
            model.grid_shape,
            model.num_embeddings,
            seed=recipe["seed"],
            **recipe["prior"],
        )
    )
    return model


def _save_weights(model, path):
    tmp = Path(path).with_name("part." + Path(path).name)
    model.save_weights(tmp)
    os.replace(tmp, path)


def _adam(settings, steps):
    schedule = keras.optimizers.schedules.CosineDecay(
        settings["learning_rate"],
        decay_steps=max(1, steps),
        alpha=settings["final_learning_rate"] / settings["learning_rate"],
    )
    return keras.optimizers.Adam(schedule)


class _Log(keras.callbacks.Callback):
    """Prints the logs every `every` batches and at each epoch's end."""

    def __init__(self, stage, start, every=50):
        super().__init__()
        self.stage = stage
        self.start = start
        self.every = every

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every == 0:
            loss = float((logs or {}).get("loss", float("nan")))
            seconds = time.time() - self.start
            print(
                f"{self.stage} batch {batch + 1} [{seconds:.0f}s] loss={loss:.4f}",
                flush=True,
            )

    def on_epoch_end(self, epoch, logs=None):
        items = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        seconds = time.time() - self.start
        print(
            f"{self.stage} epoch {epoch + 1} [{seconds:.0f}s] {items}",
            flush=True,
        )


def train(recipe, epochs, prior_epochs, run_dir, x_train):
    """Runs (or resumes) both stages; returns the trained model and times."""
    keras.utils.set_random_seed(recipe["seed"])
    batch_size = recipe["batch_size"]
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    done_path = run_dir / "done.json"
    done = json.loads(done_path.read_text()) if done_path.is_file() else {}
    model = build_model(recipe)
    vq_weights = run_dir / "vq_vae.weights.h5"
    if "vq_vae_seconds" not in done:
        start = time.time()
        model.compile(optimizer=_adam(recipe["optimizer"], epochs * steps_per_epoch))
        history = model.fit(
            x_train,
            epochs=epochs,
            batch_size=batch_size,
            shuffle=True,
            callbacks=[
                common.backup_and_restore(run_dir, "backup_vq_vae"),
                common.ResumeState(run_dir, {}, "state_vq_vae"),
                _Log("vq_vae", start),
            ],
            verbose=0,
        )
        _save_weights(model, vq_weights)
        done["vq_vae_seconds"] = time.time() - start
        done["vq_vae_last_epoch"] = {k: float(v[-1]) for k, v in history.history.items()}
        common.write_json(done_path, done)
        common.remove_backup(run_dir, "backup_vq_vae")
    else:
        print(f"VQ-VAE already trained in {run_dir}.", flush=True)
        model.load_weights(vq_weights)

    full_weights = run_dir / "vq_vae_and_prior.weights.h5"
    if "prior_seconds" not in done:
        start = time.time()
        optimizer = _adam(recipe["prior_optimizer"], prior_epochs * steps_per_epoch)
        history = model.fit_prior(
            x_train,
            optimizer=optimizer,
            epochs=prior_epochs,
            batch_size=batch_size,
            shuffle=True,
            callbacks=[
                common.backup_and_restore(run_dir, "backup_prior"),
                common.ResumeState(run_dir, {}, "state_prior"),
                _Log("prior", start),
            ],
            verbose=0,
        )
        _save_weights(model, full_weights)
        done["prior_seconds"] = time.time() - start
        done["prior_last_epoch"] = {k: float(v[-1]) for k, v in history.history.items()}
        common.write_json(done_path, done)
        common.remove_backup(run_dir, "backup_prior")
    fresh = build_model(recipe)
    fresh.load_weights(full_weights)
    return fresh, done


def code_statistics(codes, num_embeddings):
    """Perplexity and usage of the codebook over a set of code grids."""
    counts = np.bincount(codes.ravel(), minlength=num_embeddings)
    probs = counts / counts.sum()
    nonzero = probs[probs > 0]
    return {
        "perplexity": float(np.exp(-np.sum(nonzero * np.log(nonzero)))),
        "usage": float(np.mean(counts > 0)),
        "codes_used": int(np.sum(counts > 0)),
    }


def evaluate(model, x_test):
    """The preset's figures, measured with the project's own code."""
    start = time.time()
    metrics = {}
    reconstructions = model.reconstruct(x_test)
    metrics["test_mse"] = float(np.mean((reconstructions - x_test) ** 2))
    codes = model.encode(x_test)
    stats = code_statistics(codes, model.num_embeddings)
    metrics["test_perplexity"] = stats["perplexity"]
    metrics["test_codebook_usage"] = stats["usage"]
    metrics["test_codes_used"] = stats["codes_used"]
    metrics["num_embeddings"] = model.num_embeddings
    metrics["test_prior_bits_per_code"] = model.prior.bits_per_code(codes)
    metrics["test_images"] = int(len(x_test))
    check = x_test[:CHECK_IMAGES]
    metrics["check_images"] = int(len(check))
    metrics["check_mse"] = float(np.mean((model.reconstruct(check) - check) ** 2))
    metrics["check_prior_bits_per_code"] = model.prior.bits_per_code(model.encode(check))
    metrics["eval_seconds"] = round(time.time() - start, 1)
    return metrics


def save_sample_grid(model, path, num_samples=NUM_SAMPLES, seed=CHECK_SEED):
    """Draws `num_samples` images from the prior; saves them as a grid."""
    from keras_vae.plotting import image_grid

    images = model.sample(num_samples, seed=seed)
    image_grid(
        images,
        title=f"{num_samples} samples from the prior (seed {seed})",
        path=path,
    )
    return images


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m zoo.train_vq_vae", description=__doc__.split("\n")[0]
    )
    parser.add_argument("preset", choices=sorted(RECIPES))
    parser.add_argument("--epochs", type=common.positive_int, default=None)
    parser.add_argument("--prior-epochs", type=common.positive_int, default=None)
    parser.add_argument("--output", default=None, help="preset folder to write")
    parser.add_argument("--run-dir", default=None, help="resumable run state")
    parser.add_argument(
        "--train-images",
        type=common.positive_int,
        default=None,
        help="train on the first N training images only (smoke tests)",
    )
    parser.add_argument(
        "--test-images",
        type=common.positive_int,
        default=None,
        help="evaluate on the first N test images only (smoke tests)",
    )
    args = parser.parse_args(argv)
    recipe = RECIPES[args.preset]
    epochs = args.epochs or recipe["epochs"]
    prior_epochs = args.prior_epochs or recipe["prior_epochs"]
    output = common.output_folder(
        parser,
        args.preset,
        args.output,
        {
            "--train-images": args.train_images is not None,
            "--test-images": args.test_images is not None,
        },
    )
    run_dir = common.run_folder(
        args.preset, [recipe, epochs, prior_epochs, args.train_images], args.run_dir
    )
    commands = common.record_command(run_dir, "zoo.train_vq_vae", argv)
    wall_start = time.time()

    (x_train, _), (x_test, _) = kv.datasets.load(recipe["dataset"], splits=("train", "test"))
    x_train = x_train[: args.train_images or len(x_train)]
    x_test = x_test[: args.test_images or len(x_test)]
    model, training = train(recipe, epochs, prior_epochs, run_dir, x_train)
    metrics = evaluate(model, x_test)
    output.parent.mkdir(parents=True, exist_ok=True)
    samples_tmp = run_dir / "samples.png"
    save_sample_grid(model, samples_tmp)
    reference = x_test[:REFERENCE_IMAGES]
    metadata = {
        "name": args.preset,
        "description": recipe["description"],
        "dataset": {
            "name": recipe["dataset"],
            "train_split": f"train ({len(x_train)})",
            "test_split": f"test ({len(x_test)})",
        },
        "training_command": commands[0],
        "commands": commands,
        "recipe": recipe,
        "epochs": epochs,
        "prior_epochs": prior_epochs,
        "train_seconds": round(training["vq_vae_seconds"] + training["prior_seconds"], 1),
        "vq_vae_train_seconds": round(training["vq_vae_seconds"], 1),
        "prior_train_seconds": round(training["prior_seconds"], 1),
        "last_epoch_logs": {
            "vq_vae": training["vq_vae_last_epoch"],
            "prior": training["prior_last_epoch"],
        },
        "wall_seconds_this_invocation": round(time.time() - wall_start, 1),
        "trained_on_backend": keras.backend.backend(),
        "hardware": common.hardware(),
        "metrics": metrics,
        "samples": {
            "file": "samples.png",
            "num_samples": NUM_SAMPLES,
            "seed": CHECK_SEED,
        },
        "reference_encode": {
            "test_images": f"x_test[:{REFERENCE_IMAGES}]",
            "encoding_indices": model.encode(reference).tolist(),
        },
    }
    metadata = presets.save_to_preset(model, output, metadata)
    common.copy_beside_preset(samples_tmp, output)
    print(
        json.dumps({"output": str(output), "metrics": metrics}, indent=2),
        flush=True,
    )
    return metadata


if __name__ == "__main__":
    main()
