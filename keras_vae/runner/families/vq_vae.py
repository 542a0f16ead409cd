"""`VQVAEFamily`: the runner's hooks for a VQ-VAE and its Transformer prior."""

import math
import time
from pathlib import Path

import numpy as np

from keras_vae import datasets
from keras_vae.models import TransformerPrior
from keras_vae.models.vq_vae import VQVAE
from keras_vae.runner.families.family import Family
from keras_vae.runner.families.image_vae import adam
from keras_vae.runner.options import positive_int
from keras_vae.runner.stage import Stage

# Cheap re-check of the headline figures (tests/zoo/vq_vae_preset_test.py).
CHECK_IMAGES = 1000
CHECK_SEED = 0
REFERENCE_IMAGES = 4
NUM_SAMPLES = 64
# A code counts as used (thresholded) when it takes at least a tenth of
# its uniform share of the positions, USAGE_SHARE / num_embeddings.
USAGE_SHARE = 0.1


def code_statistics(codes, num_embeddings):
    """Perplexity and usage of the codebook over a set of code grids.

    All figures come from one histogram of the code indices over every
    evaluated position (images x grid cells), not per batch:

    - `perplexity`: `exp` of the entropy (nats) of that histogram; `K` when
      the `K` codes are used equally, 1 when one code takes everything.
      (Training logs average a per-batch perplexity, which is lower.)
    - `usage` / `codes_used`: the fraction / number of codes used at least
      once. One position is enough, so it can read 100% while some codes
      are all but dead.
    - `usage_thresholded` / `codes_used_thresholded`: codes used by at
      least `USAGE_SHARE / K` of the positions, a tenth of the uniform
      share (`usage_threshold_positions` positions, rounded up).
    - `min_code_count`: positions of the rarest code; `positions` in all.

    Example:

    >>> import numpy as np
    >>> from keras_vae.runner.families.vq_vae import code_statistics
    >>> code_statistics(np.array([[0, 1], [1, 0]]), 4)["usage"]
    0.5
    >>> stats = code_statistics(np.array([0] * 97 + [1, 1, 2]), 4)
    >>> stats["usage"], stats["usage_thresholded"], stats["min_code_count"]
    (0.75, 0.25, 0)
    """
    counts = np.bincount(np.asarray(codes).ravel(), minlength=num_embeddings)
    probs = counts / counts.sum()
    nonzero = probs[probs > 0]
    threshold = math.ceil(USAGE_SHARE * counts.sum() / num_embeddings)
    return {
        "perplexity": float(np.exp(-np.sum(nonzero * np.log(nonzero)))),
        "usage": float(np.mean(counts > 0)),
        "codes_used": int(np.sum(counts > 0)),
        "usage_thresholded": float(np.mean(counts >= threshold)),
        "codes_used_thresholded": int(np.sum(counts >= threshold)),
        "usage_threshold_positions": int(threshold),
        "min_code_count": int(counts.min()),
        "positions": int(counts.sum()),
    }


def mean_squared_errors(model, x):
    """`(mse, mse_clipped)` of the reconstructions of `x`: the decoder's
    raw outputs (not bounded to the data's `[0, 1]`) and the same
    clipped to `[0, 1]`, as an image would be displayed or stored."""
    reconstruction = np.asarray(model.reconstruct(x))
    clipped = np.clip(reconstruction, 0.0, 1.0)
    return float(np.mean((reconstruction - x) ** 2)), float(np.mean((clipped - x) ** 2))


def reconstruction_metrics(model, x_test):
    """The test figures of a VQ-VAE that need no prior: `(metrics, codes)`
    with the raw and clipped MSE (`test_mse`, `test_mse_clipped`) and the
    codebook statistics of `code_statistics` over every position of
    `x_test`'s code grids (`test_perplexity`, `test_codebook_usage`, ...)."""
    metrics = {}
    metrics["test_mse"], metrics["test_mse_clipped"] = mean_squared_errors(model, x_test)
    codes = np.asarray(model.encode(x_test))
    stats = code_statistics(codes, model.num_embeddings)
    metrics["test_perplexity"] = stats["perplexity"]
    metrics["test_codebook_usage"] = stats["usage"]
    metrics["test_codes_used"] = stats["codes_used"]
    metrics["test_codebook_usage_thresholded"] = stats["usage_thresholded"]
    metrics["test_codes_used_thresholded"] = stats["codes_used_thresholded"]
    metrics["usage_threshold_share"] = USAGE_SHARE
    metrics["usage_threshold_positions"] = stats["usage_threshold_positions"]
    metrics["test_min_code_count"] = stats["min_code_count"]
    metrics["test_code_positions"] = stats["positions"]
    metrics["num_embeddings"] = model.num_embeddings
    return metrics, codes


class VQVAEFamily(Family):
    """A `VQVAE` trained in two stages: the VQ-VAE (`fit`, stage
    `"train"`), then the autoregressive prior over its codes (`fit_prior`,
    stage `"prior"`). Scored by reconstruction MSE, codebook perplexity and
    usage and the prior's bits per code; a grid of prior samples is
    written beside the preset (`samples.png`).

    Example:

    >>> from keras_vae.runner.families import FAMILIES
    >>> FAMILIES["vq_vae"].__name__
    'VQVAEFamily'
    """

    def add_arguments(self, parser):
        parser.add_argument("--epochs", type=positive_int, help="VQ-VAE epochs")
        parser.add_argument("--prior-epochs", type=positive_int, help="prior epochs")
        parser.add_argument(
            "--train-images", type=positive_int, help="train on the first N images (smoke runs)"
        )
        parser.add_argument(
            "--test-images",
            type=positive_int,
            help="evaluate on the first N test images only (smoke runs)",
        )

    def changed_options(self, options):
        return {
            "--train-images": options.train_images is not None,
            "--test-images": options.test_images is not None,
        }

    def _epochs(self, recipe, options):
        return (
            options.epochs or recipe["epochs"],
            options.prior_epochs or recipe["prior_epochs"],
        )

    def run_key(self, recipe, options):
        return [*self._epochs(recipe, options), options.train_images]

    def load_data(self, recipe, options):
        (x_train, _), (x_test, _) = datasets.load(recipe["dataset"], splits=("train", "test"))
        return {
            "train": x_train[: options.train_images or len(x_train)],
            "test": x_test[: options.test_images or len(x_test)],
        }

    def build_model(self, recipe, data):
        args = dict(recipe["model"])
        model = VQVAE(
            input_shape=tuple(args.pop("input_shape")),
            hidden_dims=tuple(args.pop("hidden_dims")),
            seed=recipe["seed"],
            **args,
        )
        model.set_prior(
            TransformerPrior(
                model.grid_shape, model.num_embeddings, seed=recipe["seed"], **recipe["prior"]
            )
        )
        return model

    def stages(self, model, recipe, data, options):
        epochs, prior_epochs = self._epochs(recipe, options)
        batch_size = recipe["batch_size"]
        x_train = data["train"]
        steps_per_epoch = math.ceil(len(x_train) / batch_size)

        def fit(callbacks, completed):
            model.compile(optimizer=adam(recipe["optimizer"], epochs * steps_per_epoch))
            return model.fit(
                x_train,
                epochs=epochs,
                batch_size=batch_size,
                shuffle=True,
                callbacks=callbacks,
                verbose=0,
            )

        def fit_prior(callbacks, completed):
            return model.fit_prior(
                x_train,
                optimizer=adam(recipe["prior_optimizer"], prior_epochs * steps_per_epoch),
                epochs=prior_epochs,
                batch_size=batch_size,
                shuffle=True,
                callbacks=callbacks,
                verbose=0,
            )

        return [
            Stage("train", fit, epochs, every_batches=50),
            Stage("prior", fit_prior, prior_epochs, every_batches=50),
        ]

    def evaluate(self, model, run_dir, recipe, data, options):
        start = time.time()
        x_test = data["test"]
        metrics, codes = reconstruction_metrics(model, x_test)
        metrics["test_prior_bits_per_code"] = model.prior.bits_per_code(codes)
        metrics["test_images"] = int(len(x_test))
        check = x_test[:CHECK_IMAGES]
        metrics["check_images"] = int(len(check))
        metrics["check_mse"], metrics["check_mse_clipped"] = mean_squared_errors(model, check)
        metrics["check_prior_bits_per_code"] = model.prior.bits_per_code(model.encode(check))
        metrics["eval_seconds"] = round(time.time() - start, 1)
        return metrics

    def metadata(self, model, recipe, data, options, training, metrics):
        epochs, prior_epochs = self._epochs(recipe, options)
        return {
            "dataset": {
                "name": recipe["dataset"],
                "train_split": f"train ({len(data['train'])})",
                "test_split": f"test ({len(data['test'])})",
            },
            "epochs": epochs,
            "prior_epochs": prior_epochs,
            "vq_vae_train_seconds": round(training["train"]["train_seconds"], 1),
            "prior_train_seconds": round(training["prior"]["train_seconds"], 1),
            "samples": {"file": "samples.png", "num_samples": NUM_SAMPLES, "seed": CHECK_SEED},
            "reference_encode": {
                "test_images": f"x_test[:{REFERENCE_IMAGES}]",
                "encoding_indices": np.asarray(
                    model.encode(data["test"][:REFERENCE_IMAGES])
                ).tolist(),
            },
        }

    def pictures(self, model, run_dir, data, options):
        from keras_vae.plotting import image_grid

        path = Path(run_dir) / "samples.png"
        image_grid(
            model.sample(NUM_SAMPLES, seed=CHECK_SEED),
            title=f"{NUM_SAMPLES} samples from the prior (seed {CHECK_SEED})",
            path=path,
        )
        return [path]
