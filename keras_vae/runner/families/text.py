"""`Text`: the runner's hooks for sentence models on Penn Treebank."""

import inspect
import json
import time

import keras

from keras_vae import datasets
from keras_vae.datasets.text_batches import TextBatches
from keras_vae.layers import Vocabulary
from keras_vae.metrics import evaluate_text_model, perplexity_from_log_likelihoods
from keras_vae.runner.evaluation import cached_log_likelihood
from keras_vae.runner.families.family import Family
from keras_vae.runner.negative_elbo import NegativeELBO
from keras_vae.runner.options import positive_int
from keras_vae.runner.stage import Stage

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


def model_class(recipe):
    """The recipe's model class (`TextVAE` or `LSTMLanguageModel`)."""
    import keras_vae

    return getattr(keras_vae, recipe["class"])


def model_arguments(recipe):
    """The hyperparameters `--override` may set: the constructor arguments
    of the recipe's class (other than the vocabulary and the seed)."""
    signature = inspect.signature(model_class(recipe).__init__)
    return sorted(
        name
        for name, parameter in signature.parameters.items()
        if name not in ("self", "vocabulary", "seed")
        and parameter.kind is parameter.POSITIONAL_OR_KEYWORD
    )


def compile_model(model, recipe):
    """Compiles `model` as training does: Adam with the recipe's learning
    rate and gradient clipping."""
    opt = recipe["optimizer"]
    model.compile(optimizer=keras.optimizers.Adam(opt["learning_rate"], clipnorm=opt["clipnorm"]))
    return model


def has_latent(model):
    """Whether `model` has a latent code (a text VAE, not a language model)."""
    from keras_vae.models.text_vae import TextVAE

    return isinstance(model, TextVAE)


def load_decoder_init(preset):
    """The language model preset that starts a VAE's decoder."""
    import keras_vae

    try:
        return keras_vae.LSTMLanguageModel.from_preset(preset)
    except (FileNotFoundError, ValueError) as error:
        raise RuntimeError(
            f"This recipe starts its decoder from the language model preset "
            f"{preset!r}, which could not be loaded ({error}). Train it first "
            f"(python -m zoo.train {preset}) or pass --decoder-init FOLDER."
        ) from error


def check_perplexity(model, test, sentences=CHECK_SENTENCES, samples=CHECK_SAMPLES):
    """Perplexity of the cheap fixed-seed re-check (`CHECK_*`)."""
    check = test[:sentences]
    log_px = model.log_likelihood(check, num_samples=samples, seed=CHECK_SEED)
    return perplexity_from_log_likelihoods(log_px, model.num_tokens(check))


def examples(model):
    """Reconstructions, samples and a homotopy for the README."""
    if not has_latent(model):
        return {"samples": model.sample(5, seed=CHECK_SEED)}
    return {
        "inputs": EXAMPLES,
        "reconstructions_greedy": model.reconstruct(EXAMPLES),
        "reconstructions_beam": model.reconstruct(EXAMPLES, decoding="beam"),
        "samples": model.sample(5, seed=CHECK_SEED),
        "samples_greedy": model.sample(5, seed=CHECK_SEED, decoding="greedy"),
        "homotopy": model.interpolate(EXAMPLES[0], EXAMPLES[2], steps=5),
    }


def reference_encode(model):
    """Posterior parameters of `EXAMPLES` (empty for a language model)."""
    if not has_latent(model):
        return {}
    z_mean, z_log_var = model.encode(EXAMPLES)
    return {"sentences": EXAMPLES, "z_mean": z_mean.tolist(), "z_log_var": z_log_var.tolist()}


class Text(Family):
    """A `TextVAE` or `LSTMLanguageModel` on Penn Treebank.

    The vocabulary always comes from the whole training split (a smoke run's
    model has the preset's 10k words). A recipe with `"decoder_init"`
    starts the VAE's decoder from that language model preset. The best
    weights by `val_neg_elbo` (the language model: `val_loss`, its NLL) are
    kept, with learning-rate decay and early stopping on the same; the
    evaluation is the importance-sampled NLL, per-word perplexity, KL,
    mutual information and active units (`evaluate_text_model`).

    Example:

    >>> from keras_vae.runner.families import FAMILIES
    >>> FAMILIES["text"].__name__
    'Text'
    """

    def add_arguments(self, parser):
        parser.add_argument("--epochs", type=positive_int, help="default: the recipe's")
        parser.add_argument("--eval-samples", type=positive_int, help="importance samples")
        parser.add_argument("--eval-sentences", type=positive_int, help="test sentences")
        parser.add_argument(
            "--decoder-init",
            default=None,
            metavar="PRESET",
            help="language model preset (name or folder) that starts the VAE's decoder, "
            "instead of the recipe's",
        )
        parser.add_argument(
            "--valid-sentences",
            type=positive_int,
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
            type=positive_int,
            help="train on the first N training sentences only (smoke runs)",
        )

    def changed_options(self, options):
        return {
            "--override": bool(options.override),
            "--decoder-init": options.decoder_init is not None,
            "--train-sentences": options.train_sentences is not None,
            "--valid-sentences": options.valid_sentences is not None,
            "--eval-samples": options.eval_samples is not None,
            "--eval-sentences": options.eval_sentences is not None,
        }

    def apply_options(self, recipe, options, error):
        if options.override:
            recipe = {**recipe, "model": dict(recipe["model"])}
            allowed = model_arguments(recipe)
            for item in options.override:
                key, _, value = item.partition("=")
                if key not in allowed:
                    error(f"--override {item}: {key!r} is not one of {allowed}")
                recipe["model"][key] = json.loads(value)
        if options.decoder_init:
            if "decoder_init" not in recipe:
                error("--decoder-init: this recipe has no decoder to initialize")
            recipe = {**recipe, "decoder_init": options.decoder_init}
        return recipe

    def _epochs(self, recipe, options):
        return options.epochs or recipe["epochs"]

    def run_key(self, recipe, options):
        counts = [options.train_sentences, options.valid_sentences]
        return [self._epochs(recipe, options), counts]

    def load_data(self, recipe, options):
        (train_all, _), (valid, _), (test, _) = datasets.load(
            "ptb", splits=("train", "valid", "test")
        )
        eval_sentences = options.eval_sentences or recipe["eval_sentences"]
        data = {
            "vocabulary": Vocabulary.from_sentences(train_all, name="vocabulary"),
            "train": train_all[: options.train_sentences or len(train_all)],
            "valid": valid[: options.valid_sentences or len(valid)],
            "test": test[:eval_sentences],
            "decoder_init": None,
        }
        if "decoder_init" in recipe:
            data["decoder_init"] = load_decoder_init(recipe["decoder_init"])
        return data

    def build_model(self, recipe, data):
        return model_class(recipe)(data["vocabulary"], seed=recipe["seed"], **recipe["model"])

    def stages(self, model, recipe, data, options):
        epochs = self._epochs(recipe, options)

        def fit(callbacks, completed):
            compile_model(model, recipe)
            if data["decoder_init"] is not None:
                # A resumed run continues from its checkpoint instead.
                model.initialize_from_language_model(data["decoder_init"])
            batches = TextBatches(
                data["train"],
                model.tokenize,
                batch_size=recipe["batch_size"],
                seed=recipe["seed"],
                max_length=model.max_length,
            )
            batches.epoch = completed  # a resumed run gets the batches an uninterrupted one would
            valid = TextBatches(data["valid"], model.tokenize, batch_size=256, shuffle=False)
            return model.fit(
                batches, validation_data=valid, epochs=epochs, callbacks=callbacks, verbose=0
            )

        return [
            Stage(
                "train",
                fit,
                epochs,
                monitor="val_neg_elbo" if has_latent(model) else "val_loss",
                early_stopping_patience=recipe["early_stopping_patience"],
                lr_decay=recipe["lr_decay"],
                callbacks=(NegativeELBO(),),
            )
        ]

    def _eval_samples(self, recipe, options):
        return options.eval_samples or recipe["eval_samples"]

    def evaluate(self, model, run_dir, recipe, data, options):
        start = time.time()
        test = data["test"]
        samples = self._eval_samples(recipe, options)
        log_px, _ = cached_log_likelihood(model, test, samples, CHECK_SEED, run_dir)
        metrics = evaluate_text_model(
            model, test, num_samples=samples, seed=CHECK_SEED, log_likelihoods=log_px
        )
        metrics["seconds"] = round(time.time() - start, 1)
        metrics["check_perplexity"] = check_perplexity(model, test)
        metrics["check_importance_samples"] = CHECK_SAMPLES
        metrics["check_sentences"] = len(test[:CHECK_SENTENCES])
        metrics["check_seed"] = CHECK_SEED
        return metrics

    def metadata(self, model, recipe, data, options, training, metrics):
        from keras_vae.runner.run import training_summary

        entries = {
            "dataset": {
                "name": "ptb",
                "train_split": f"train ({len(data['train'])} sentences)",
                "early_stopping_split": f"valid ({len(data['valid'])} sentences)",
                "test_split": f"test ({len(data['test'])} sentences)",
                "vocabulary_size": data["vocabulary"].size,
            },
            **training_summary(training["train"]),
            "examples": examples(model),
            "reference_encode": reference_encode(model),
            "published": recipe["published"],
            "targets": recipe["targets"],
        }
        if data["decoder_init"] is not None:
            lm = data["decoder_init"].preset_metadata
            entries["decoder_init"] = {
                "preset": recipe["decoder_init"],
                "sha256": lm["sha256"],
                "test_perplexity": lm["metrics"]["perplexity"],
            }
        return entries
