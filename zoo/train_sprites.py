r"""Trains a disentanglement preset on the procedural sprites (a preset folder).

Usage:

    python -m zoo.train_sprites beta_vae_sprites [--steps N] [--output DIR]
        [--run-dir DIR] [--eval-fraction F]
    python -m zoo.train_sprites vae_sprites       # the beta = 1 baseline

The sibling of `zoo/train.py` for models scored by disentanglement. Both
recipes below share the architecture, data, optimizer and step budget; they
differ only in the KL term. Training draws batches uniformly from all
737,280 sprites, rendered on the fly (`SpriteBatches`: NumPy only, so a
machine without TensorFlow trains too), as in disentanglement_lib
(Locatello et al. 2019). A run keeps its state in a run
folder (`--run-dir`, by default under the Keras cache):
`keras.callbacks.BackupAndRestore` continues an interrupted run from its
last finished "epoch" (`steps_per_epoch` steps), and finished evaluations
are cached. The final weights are evaluated with the project's own
metrics (`mutual_information_gap`, `factor_vae_score`,
`dci_disentanglement`, with disentanglement_lib's sample sizes; plus cheap
`check_*` re-runs with small fixed-seed protocols that CI can repeat), and
the preset folder (`config.json`, `model.weights.h5`, `metadata.json`) is
written atomically to `--output` (default `zoo/<preset>`, the shipped
preset: a run with `--eval-fraction` must name its own folder), with the
latent traversal (`traversal.png`: one row per latent, sorted by KL)
beside it.

Smoke run (what the test does; not a trained model):

    python -m zoo.train_sprites beta_vae_sprites --steps 4 \
        --steps-per-epoch 2 --eval-fraction 0.002 --validation-images 64 \
        --output /tmp/preset
"""

import argparse
import json
import os
import time
from pathlib import Path

import keras
import numpy as np

import keras_vae as kv
from keras_vae import presets
from keras_vae.datasets import SpriteBatches, sprites
from keras_vae.metrics.active_units import active_units
from keras_vae.metrics.dci import dci_disentanglement
from keras_vae.metrics.factor_vae import factor_vae_score
from keras_vae.metrics.mig import mutual_information_gap
from zoo import common

# Full evaluation: disentanglement_lib's sample sizes, scaled by
# --eval-fraction for smoke runs.
FULL_EVAL = {
    "mig": {"num_samples": 10_000},
    "factor_vae": {
        "num_train": 10_000,
        "num_eval": 5_000,
        "num_variance_estimate": 10_000,
    },
    "dci": {"num_train": 10_000, "num_test": 5_000},
}
# Cheap re-checks (seconds on a CPU) stored in the metadata, so a test can
# recompute them from the preset and compare.
CHECK_EVAL = {
    "mig": {"num_samples": 2_000, "seed": 1},
    "factor_vae": {
        "num_train": 300,
        "num_eval": 300,
        "num_variance_estimate": 2_000,
        "seed": 1,
    },
    "dci": {
        "num_train": 2_000,
        "num_test": 1_000,
        "predictor": "lasso",
        "seed": 1,
    },
}
METRIC_FUNCTIONS = {
    "mig": mutual_information_gap,
    "factor_vae": factor_vae_score,
    "dci": dci_disentanglement,
}
REFERENCE_IMAGES = 4
TRAVERSAL_IMAGES = 500  # rank the latents by KL over these

_COMMON = {
    "dataset": "sprites",
    # Fully connected networks as in Higgins et al. (2017), narrowed to
    # 512-512 (about 3,500 images/s on a 2-core CPU under JAX, 10x the conv
    # networks); 10 latents, Bernoulli pixels.
    "architecture": {
        "input_shape": [64, 64, 1],
        "latent_dim": 10,
        "likelihood": "bernoulli",
        "architecture": "mlp",
        "hidden_dims": [512, 512],
    },
    "optimizer": {"name": "adam", "learning_rate": 5e-4},
    "batch_size": 64,
    "steps": 300_000,
    "steps_per_epoch": 5_000,
    "validation_images": 5_000,
    "seed": 0,
}

RECIPES = {
    "beta_vae_sprites": {
        **_COMMON,
        "description": (
            "beta-VAE with controlled capacity (Burgess et al. 2018) on the "
            "procedural dSprites-style sprites: objective reconstruction + "
            "gamma |KL - C| with gamma = 100 and C ramped linearly from 0 "
            "to 20 nats over 100k steps, then held for 200k; 10 latents, "
            "fully connected encoder/decoder (512-512)."
        ),
        "class": "BetaVAE",
        "model": {
            "capacity_max": 20.0,
            "capacity_steps": 100_000,
            "gamma": 100.0,
        },
        "published": {
            "reference": "Locatello et al. 2019 (disentanglement_lib) "
            "report MIG / FactorVAE / DCI of AnnealedVAE and beta-VAE on the "
            "original dSprites with the same metric protocols; numbers on "
            "these procedural sprites are not directly comparable.",
        },
    },
    "vae_sprites": {
        **_COMMON,
        "description": (
            "Plain VAE (beta = 1) baseline for beta_vae_sprites: the same "
            "network, data, optimizer and step budget, with the ELBO."
        ),
        "class": "VAE",
        "model": {},
        "published": {},
    },
}


def build_model(recipe):
    """The untrained model of a recipe."""
    classes = {"BetaVAE": kv.BetaVAE, "VAE": kv.VAE}
    architecture = dict(recipe["architecture"])
    architecture["input_shape"] = tuple(architecture["input_shape"])
    architecture["hidden_dims"] = tuple(architecture["hidden_dims"])
    return classes[recipe["class"]](**architecture, **recipe["model"], seed=recipe["seed"])


class _DisentanglementLog(keras.callbacks.Callback):
    """Adds the cheap MIG (`CHECK_EVAL["mig"]`) and each factor's gap to
    the epoch logs, so a run shows early whether it is disentangling: a
    pair of latents that encodes x and y rotated (the failure of every
    CPU run, docs/beta_vae.md) gives small `gap_x` and `gap_y`."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        mig, information, entropies = mutual_information_gap(
            self.model, "sprites", return_matrix=True, **CHECK_EVAL["mig"]
        )
        top = np.sort(information, axis=0)[::-1]
        logs["check_mig"] = mig
        for name, gap in zip(sprites.FACTOR_NAMES, (top[0] - top[1]) / entropies):
            logs[f"gap_{name}"] = float(gap)


def train(recipe, steps, steps_per_epoch, run_dir, validation_images):
    """Trains (or resumes) a run; returns the model with its final weights."""
    keras.utils.set_random_seed(recipe["seed"])
    model = build_model(recipe)
    model.compile(optimizer=keras.optimizers.Adam(recipe["optimizer"]["learning_rate"]))
    done_path = run_dir / "done.json"
    final = run_dir / "final.weights.h5"
    if not done_path.is_file():
        epochs = -(-steps // steps_per_epoch)
        # NumPy rendering in threads: no TensorFlow needed (GPU machines
        # with JAX or PyTorch alone train too).
        data = SpriteBatches(
            batch_size=recipe["batch_size"],
            steps=steps_per_epoch,
            seed=recipe["seed"],
            workers=min(4, os.cpu_count() or 1),
        )
        # A resumed run draws new batches.
        data.epoch = common.backed_up_epochs(run_dir) or 0
        x_valid, _ = sprites.load_sprites("test", num_test=validation_images)
        log = common.EpochLog(run_dir)
        model.fit(
            data,
            validation_data=(x_valid,),
            epochs=epochs,
            shuffle=False,  # batches are random draws already
            callbacks=[
                common.backup_and_restore(run_dir),
                common.ResumeState(run_dir, {}),
                _DisentanglementLog(),
                log,
            ],
            verbose=0,
        )
        tmp = run_dir / "final.part.weights.h5"
        model.save_weights(tmp)
        os.replace(tmp, final)
        common.write_json(
            done_path,
            {
                "train_seconds": log.seconds(),
                "steps_trained": int(keras.ops.convert_to_numpy(model.steps_trained)),
                "last_epoch_logs": log.history[-1] if log.history else None,
            },
        )
        common.remove_backup(run_dir)
    else:
        print(f"Training already done in {run_dir}; evaluating.", flush=True)
    fresh = build_model(recipe)
    fresh.load_weights(final)
    return fresh, json.loads(done_path.read_text())


def _scaled(arguments, fraction):
    if fraction >= 1:
        return dict(arguments)
    return {
        k: max(2, int(v * fraction)) if k.startswith("num_") else v for k, v in arguments.items()
    }


def evaluate(model, run_dir, fraction):
    """The preset's metrics (cached per metric in the run folder)."""
    cache_path = Path(run_dir) / f"metrics_f{fraction:g}.json"
    metrics = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    protocols = {}
    for name, function in METRIC_FUNCTIONS.items():
        for prefix, arguments in (
            ("", _scaled(FULL_EVAL[name], fraction)),
            ("check_", _scaled(CHECK_EVAL[name], fraction)),
        ):
            protocols[prefix + name] = arguments
            if prefix + name in metrics:
                continue
            start = time.time()
            metrics[prefix + name] = function(model, "sprites", **arguments)
            print(
                f"{prefix + name} = {metrics[prefix + name]:.4f} [{time.time() - start:.0f}s]",
                flush=True,
            )
            common.write_json(cache_path, metrics)
    num_test = max(100, int(sprites.NUM_TEST * min(1.0, fraction)))
    x_test, _ = sprites.load_sprites("test", num_test=num_test)
    if "test_elbo" not in metrics:
        metrics["test_elbo"] = float(np.mean(model.elbo(x_test, seed=0)))
        metrics["active_units"] = active_units(model, x_test)
        common.write_json(cache_path, metrics)
    metrics["test_images"] = len(x_test)
    return metrics, protocols


def recheck_metrics(preset, atol=0.02):
    """Recomputes a preset's cheap `check_*` metrics and compares them.

    Loads the preset (any backend), reruns each `check_*` protocol stored
    in its metadata and raises `AssertionError` if a value differs from the
    stored one by more than `atol` (backends differ slightly in floating
    point, which can move a few histogram bins or votes). Returns
    `{name: (stored, recomputed)}`. Seconds on a CPU: what CI runs.

    Example:

    >>> recheck_metrics("beta_vae_sprites")  # doctest: +SKIP
    {'check_mig': (0.31, 0.31), ...}
    """
    model = kv.from_preset(preset)
    metadata = model.preset_metadata
    results = {}
    for name, function in METRIC_FUNCTIONS.items():
        key = "check_" + name
        arguments = metadata["metric_protocols"][key]
        results[key] = (
            metadata["metrics"][key],
            function(model, "sprites", **arguments),
        )
    bad = {k: v for k, v in results.items() if abs(v[0] - v[1]) > atol}
    if bad:
        raise AssertionError(
            f"Preset {preset}: recomputed metrics differ from the metadata "
            f"by more than {atol}: {bad} (stored, recomputed)."
        )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m zoo.train_sprites", description=__doc__.split("\n")[0]
    )
    parser.add_argument("preset", choices=sorted(RECIPES))
    parser.add_argument("--steps", type=common.positive_int, default=None)
    parser.add_argument("--steps-per-epoch", type=common.positive_int, default=None)
    parser.add_argument("--output", default=None, help="preset folder")
    parser.add_argument("--run-dir", default=None, help="resumable run state")
    parser.add_argument(
        "--eval-fraction",
        type=float,
        default=1.0,
        help="scale the metrics' sample sizes (smoke runs only)",
    )
    parser.add_argument(
        "--validation-images",
        type=common.positive_int,
        default=None,
        help="validation images per epoch (default: the recipe's)",
    )
    args = parser.parse_args(argv)

    recipe = RECIPES[args.preset]
    steps = args.steps or recipe["steps"]
    steps_per_epoch = min(args.steps_per_epoch or recipe["steps_per_epoch"], steps)
    if not 0 < args.eval_fraction <= 1:
        parser.error(f"--eval-fraction must be in (0, 1], got {args.eval_fraction}")
    output = common.output_folder(
        parser, args.preset, args.output, {"--eval-fraction": args.eval_fraction != 1.0}
    )
    run_dir = common.run_folder(args.preset, [recipe, steps, steps_per_epoch], args.run_dir)
    commands = common.record_command(run_dir, "zoo.train_sprites", argv)
    wall_start = time.time()

    validation_images = args.validation_images or recipe["validation_images"]
    model, training = train(recipe, steps, steps_per_epoch, run_dir, validation_images)
    metrics, protocols = evaluate(model, run_dir, args.eval_fraction)
    reference_classes = sprites.index_to_classes(sprites.split_indices("test")[:REFERENCE_IMAGES])
    z_mean, z_log_var = model.encode(sprites.sprites_images(reference_classes))
    from keras_vae import plotting  # matplotlib: the `plot` extra

    figure = run_dir / "traversal.png"
    x_rank = sprites.load_sprites("test", num_test=TRAVERSAL_IMAGES)[0]
    plotting.plot_latent_traversal(model, x_rank, num_dims=model.latent_dim, path=figure)
    metadata = {
        "name": args.preset,
        "description": recipe["description"],
        "dataset": {
            "name": "sprites",
            "train": "batches drawn uniformly from all 737,280 images",
            "validation": f"sprites 'test' split ({validation_images} images)",
        },
        "training_command": commands[0],
        "commands": commands,
        "recipe": recipe,
        "steps_requested": steps,
        "steps_trained": training["steps_trained"],
        "last_epoch_logs": training["last_epoch_logs"],
        "train_seconds": round(training["train_seconds"], 1),
        "wall_seconds_this_invocation": round(time.time() - wall_start, 1),
        "hardware": common.hardware(),
        "trained_on_backend": keras.backend.backend(),
        "metrics": metrics,
        "metric_protocols": protocols,
        "eval_fraction": args.eval_fraction,
        "published": recipe["published"],
        "traversal": {
            "file": "traversal.png",
            "images": f"sprites 'test' split, first {TRAVERSAL_IMAGES} (the first is traversed)",
            "rows": "every latent, sorted by mean KL over the images",
        },
        "reference_encode": {
            "classes": reference_classes.tolist(),
            "z_mean": np.asarray(z_mean).tolist(),
            "z_log_var": np.asarray(z_log_var).tolist(),
        },
    }
    metadata = presets.save_to_preset(model, output, metadata)
    common.copy_beside_preset(figure, output)
    print(json.dumps({"output": str(output), "metrics": metrics}, indent=2))
    return metadata


if __name__ == "__main__":
    main()
