"""`Sprites`: the runner's hooks for disentanglement on the procedural sprites."""

import os
import time
from pathlib import Path

import keras
import numpy as np

from keras_vae.datasets import SpriteBatches, sprites
from keras_vae.metrics.active_units import active_units
from keras_vae.metrics.dci import dci_disentanglement
from keras_vae.metrics.factor_vae import factor_vae_score
from keras_vae.metrics.mig import mutual_information_gap
from keras_vae.models.beta_vae import BetaVAE
from keras_vae.models.vae import VAE
from keras_vae.runner import files
from keras_vae.runner.families.family import Family
from keras_vae.runner.options import positive_int
from keras_vae.runner.stage import Stage

# Full evaluation: disentanglement_lib's sample sizes, scaled by
# --eval-fraction for smoke runs.
FULL_EVAL = {
    "mig": {"num_samples": 10_000},
    "factor_vae": {"num_train": 10_000, "num_eval": 5_000, "num_variance_estimate": 10_000},
    "dci": {"num_train": 10_000, "num_test": 5_000},
}
# The FactorVAE score once more with only the active latents voting
# (variance of the code > 0.01, the active-units threshold): collapsed
# latents can pass the protocol's 0.05 prune threshold and vote.
FULL_EVAL["factor_vae_active_only"] = {**FULL_EVAL["factor_vae"], "exclude_inactive": True}
# Cheap re-checks (seconds on a CPU) stored in the metadata, so a test can
# recompute them from the preset and compare.
CHECK_EVAL = {
    "mig": {"num_samples": 2_000, "seed": 1},
    "factor_vae": {"num_train": 300, "num_eval": 300, "num_variance_estimate": 2_000, "seed": 1},
    "dci": {"num_train": 2_000, "num_test": 1_000, "predictor": "lasso", "seed": 1},
}
CHECK_EVAL["factor_vae_active_only"] = {**CHECK_EVAL["factor_vae"], "exclude_inactive": True}
METRIC_FUNCTIONS = {
    "mig": mutual_information_gap,
    "factor_vae": factor_vae_score,
    "factor_vae_active_only": factor_vae_score,
    "dci": dci_disentanglement,
}
CLASSES = {"BetaVAE": BetaVAE, "VAE": VAE}
REFERENCE_IMAGES = 4
TRAVERSAL_IMAGES = 500  # rank the latents by KL over these


class DisentanglementLog(keras.callbacks.Callback):
    """Adds the cheap MIG (`CHECK_EVAL["mig"]`) and each factor's gap to
    the epoch logs, so a run shows early whether it is disentangling: a
    pair of latents that encodes x and y rotated gives small `gap_x` and
    `gap_y`.

    Example:

    >>> from keras_vae.runner.families.sprites import DisentanglementLog
    >>> log = DisentanglementLog()  # model.fit(..., callbacks=[log])
    """

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


def scaled(arguments, fraction):
    """A metric protocol with its sample sizes (`num_*`) scaled by `fraction`."""
    if fraction >= 1:
        return dict(arguments)
    return {
        k: max(2, int(v * fraction)) if k.startswith("num_") else v for k, v in arguments.items()
    }


def metric_protocols(fraction):
    """Metric name (`mig`, `check_mig`, ...) -> its arguments."""
    protocols = {}
    for name in METRIC_FUNCTIONS:
        protocols[name] = scaled(FULL_EVAL[name], fraction)
        protocols["check_" + name] = scaled(CHECK_EVAL[name], fraction)
    return protocols


def _fraction(text):
    value = float(text)
    if not 0 < value <= 1:
        import argparse

        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


class Sprites(Family):
    """A `VAE` or `BetaVAE` on the procedural sprites, scored by MIG,
    FactorVAE score (every latent that passes the protocol's prune
    threshold, and the active latents only: `factor_vae_active_only`)
    and DCI.

    Batches are drawn uniformly from all 737,280 sprites, rendered on the
    fly with NumPy (no TensorFlow needed); an "epoch" is
    `steps_per_epoch` steps. The final weights are kept and a latent
    traversal (`traversal.png`) is written beside the preset.

    Example:

    >>> from keras_vae.runner.families import FAMILIES
    >>> FAMILIES["sprites"].__name__
    'Sprites'
    """

    def add_arguments(self, parser):
        parser.add_argument("--steps", type=positive_int, help="training steps")
        parser.add_argument("--steps-per-epoch", type=positive_int, help="steps per epoch")
        parser.add_argument(
            "--eval-fraction",
            type=_fraction,
            default=1.0,
            help="scale the metrics' sample sizes (smoke runs only)",
        )
        parser.add_argument(
            "--validation-images",
            type=positive_int,
            help="validation images per epoch (default: the recipe's)",
        )
        parser.add_argument(
            "--figure",
            default=None,
            help="also write the latent traversal to this file (the preset folder "
            "always gets traversal.png)",
        )

    def changed_options(self, options):
        return {"--eval-fraction": options.eval_fraction != 1.0}

    def _steps(self, recipe, options):
        steps = options.steps or recipe["steps"]
        return steps, min(options.steps_per_epoch or recipe["steps_per_epoch"], steps)

    def run_key(self, recipe, options):
        return list(self._steps(recipe, options))

    def load_data(self, recipe, options):
        count = options.validation_images or recipe["validation_images"]
        x_valid, _ = sprites.load_sprites("test", num_test=count)
        return {"valid": x_valid}

    def build_model(self, recipe, data):
        architecture = dict(recipe["architecture"])
        architecture["input_shape"] = tuple(architecture["input_shape"])
        architecture["hidden_dims"] = tuple(architecture["hidden_dims"])
        cls = CLASSES[recipe["class"]]
        return cls(**architecture, **recipe["model"], seed=recipe["seed"])

    def stages(self, model, recipe, data, options):
        steps, steps_per_epoch = self._steps(recipe, options)
        epochs = -(-steps // steps_per_epoch)

        def fit(callbacks, completed):
            model.compile(optimizer=keras.optimizers.Adam(recipe["optimizer"]["learning_rate"]))
            batches = SpriteBatches(
                batch_size=recipe["batch_size"],
                steps=steps_per_epoch,
                seed=recipe["seed"],
                workers=min(4, os.cpu_count() or 1),
            )
            batches.epoch = completed  # a resumed run draws new batches
            return model.fit(
                batches,
                validation_data=(data["valid"],),
                epochs=epochs,
                shuffle=False,  # batches are random draws already
                callbacks=callbacks,
                verbose=0,
            )

        def record(trained):
            return {"steps_trained": int(keras.ops.convert_to_numpy(trained.steps_trained))}

        return [Stage("train", fit, epochs, callbacks=(DisentanglementLog(),), record=record)]

    def evaluate(self, model, run_dir, recipe, data, options):
        """The metrics, each cached in the run folder when done."""
        fraction = options.eval_fraction
        cache_path = Path(run_dir) / f"metrics_f{fraction:g}.json"
        metrics = files.read_json(cache_path, {})
        for key, arguments in metric_protocols(fraction).items():
            if key in metrics:
                continue
            start = time.time()
            function = METRIC_FUNCTIONS[key.removeprefix("check_")]
            metrics[key] = function(model, "sprites", **arguments)
            print(f"{key} = {metrics[key]:.4f} [{time.time() - start:.0f}s]", flush=True)
            files.write_json(cache_path, metrics)
        num_test = max(100, int(sprites.NUM_TEST * min(1.0, fraction)))
        x_test, _ = sprites.load_sprites("test", num_test=num_test)
        if "test_elbo" not in metrics:
            metrics["test_elbo"] = float(np.mean(model.elbo(x_test, seed=0)))
            metrics["active_units"] = active_units(model, x_test)
            files.write_json(cache_path, metrics)
        metrics["test_images"] = len(x_test)
        return metrics

    def metadata(self, model, recipe, data, options, training, metrics):
        steps, _ = self._steps(recipe, options)
        reference = sprites.index_to_classes(sprites.split_indices("test")[:REFERENCE_IMAGES])
        z_mean, z_log_var = model.encode(sprites.sprites_images(reference))
        return {
            "dataset": {
                "name": "sprites",
                "train": "batches drawn uniformly from all 737,280 images",
                "validation": f"sprites 'test' split ({len(data['valid'])} images)",
            },
            "steps_requested": steps,
            "steps_trained": training["train"]["steps_trained"],
            "metric_protocols": metric_protocols(options.eval_fraction),
            "eval_fraction": options.eval_fraction,
            "published": recipe["published"],
            "traversal": {
                "file": "traversal.png",
                "images": (
                    f"sprites 'test' split, first {TRAVERSAL_IMAGES} (the first is traversed)"
                ),
                "rows": "every latent, sorted by mean KL over the images",
            },
            "reference_encode": {
                "classes": reference.tolist(),
                "z_mean": np.asarray(z_mean).tolist(),
                "z_log_var": np.asarray(z_log_var).tolist(),
            },
        }

    def pictures(self, model, run_dir, data, options):
        from keras_vae import plotting  # matplotlib: the `plot` extra

        figure = Path(run_dir) / "traversal.png"
        x_rank = sprites.load_sprites("test", num_test=TRAVERSAL_IMAGES)[0]
        plotting.plot_latent_traversal(model, x_rank, num_dims=model.latent_dim, path=figure)
        if options.figure:
            Path(options.figure).parent.mkdir(parents=True, exist_ok=True)
            Path(options.figure).write_bytes(figure.read_bytes())
        return [figure]
