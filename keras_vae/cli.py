"""The `keras-vae` command: train, evaluate, sample, export, presets.

Every verb takes `--help`. A MODEL argument is a built-in preset name (see
`keras-vae presets`), a preset folder, an http(s) URL of a preset archive,
or a `.keras` file. The Keras backend is the usual `KERAS_BACKEND`
environment variable.

    keras-vae presets
    keras-vae train --dataset mnist --epochs 5 --output runs/my_vae
    keras-vae evaluate runs/my_vae --split test --num-samples 100
    keras-vae sample vae_binarized_mnist --num-samples 64 --output grid.png
    keras-vae sample text_vae_ptb --num-samples 5      # prints sentences
    keras-vae evaluate text_vae_ptb --num-samples 500  # NLL, perplexity, KL, MI
    keras-vae export runs/my_vae --output serving/my_vae --version 1

User errors (unknown preset, missing data directory, bad path) print one
line, `keras-vae: error: ...`, and exit with status 1; set
`KERAS_VAE_DEBUG=1` for the full traceback.
"""

import argparse
import json
import os
import shlex
import sys

VALID_SPLIT = {"binarized_mnist": "valid"}
TEXT_DATASETS = ("ptb",)


class UserError(Exception):
    """A problem with the command's arguments or files (no traceback)."""


def _user_errors():
    from keras_vae.datasets import DatasetNotFoundError

    return (
        UserError,
        ValueError,
        FileNotFoundError,
        FileExistsError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        DatasetNotFoundError,
    )


def _say(message):
    print(message, flush=True)


def _set_data_dir(path):
    from keras_vae import datasets

    if path is None:
        return
    if not os.path.isdir(path):
        raise UserError(f"Data directory {path!r} does not exist.")
    datasets.set_data_dir(path)


def _load_data(name, split, max_examples=None):
    from keras_vae import datasets

    if name not in datasets.available():
        raise UserError(
            f"Unknown data set {name!r}. Available: {datasets.available()}."
        )
    _say(f"Loading {name} ({split} split)...")
    ((x, y),) = datasets.load(name, splits=(split,))
    if max_examples:
        x = x[:max_examples]
        y = None if y is None else y[:max_examples]
    return x, y


def _load_model(spec):
    import keras

    import keras_vae  # noqa: F401  (registers the classes)

    if spec.endswith(".keras"):
        if not os.path.isfile(spec):
            raise UserError(f"Model file {spec!r} does not exist.")
        _say(f"Loading {spec}...")
        return keras.models.load_model(spec), {}
    from keras_vae import presets

    _say(f"Loading preset {spec}...")
    model = presets.from_preset(spec)
    return model, getattr(model, "preset_metadata", {}) or {}


def _output_dir_of(path):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UserError(f"Output directory {directory!r} does not exist.")


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _int_tuple(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated ints such as 32,64, got {text!r}"
        )
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be > 0, got {text!r}")
    return values


# ----------------------------------------------------------------------
# Verbs.


def cmd_presets(args):
    from keras_vae import presets

    names = presets.list_presets()
    if not names:
        _say("No built-in presets are installed.")
        return 0
    for name in names:
        metadata = presets.load_metadata(name)
        metrics = metadata.get("metrics") or {}
        shown = ", ".join(
            f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in list(metrics.items())[:3]
            if isinstance(v, (int, float))
        )
        description = metadata.get("description", "")
        if args.verbose:
            _say(f"{name}\n  {description}\n  {shown}")
        else:
            short = description.split(". ")[0][:70]
            _say(f"{name:<28} {short}" + (f"  [{shown}]" if shown else ""))
    return 0


def _recipe_from_flags(args):
    """The recipe `keras-vae train` builds from its flags: a `VAE`
    (`image_vae` family) on an image data set."""
    from keras_vae import datasets

    if args.dataset not in datasets.available():
        raise UserError(f"Unknown data set {args.dataset!r}. Available: {datasets.available()}.")
    if args.dataset in TEXT_DATASETS:
        raise UserError(
            f"`train` builds image models from its flags; {args.dataset!r} holds "
            "sentences: pass --recipe FILE (e.g. zoo/recipes/text_vae_ptb.json)."
        )
    return {
        "family": "image_vae",
        "description": f"VAE trained with `keras-vae train` on {args.dataset}.",
        "dataset": args.dataset,
        "splits": {
            "train": "train",
            "valid": VALID_SPLIT.get(args.dataset, "test"),
            "test": "test",
        },
        "model": {
            "latent_dim": args.latent_dim,
            "likelihood": args.likelihood,
            "architecture": args.architecture,
            "hidden_dims": list(args.hidden_dims),
            "kl_warmup_steps": args.kl_warmup_steps,
        },
        "init_preset": args.preset,
        "optimizer": {"name": "adam", "learning_rate": args.learning_rate},
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "seed": args.seed,
        "eval_samples": args.eval_samples,
    }


def _read_recipe(path):
    from keras_vae import runner

    if not os.path.isfile(path):
        raise UserError(f"Recipe file {path!r} does not exist.")
    try:
        with open(path) as f:
            recipe = json.load(f)
    except json.JSONDecodeError as error:
        raise UserError(f"Recipe file {path!r} is not JSON: {error}") from None
    if not isinstance(recipe, dict) or recipe.get("family") not in runner.FAMILIES:
        raise UserError(
            f"Recipe file {path!r} must be a JSON object whose \"family\" is one of "
            f"{sorted(runner.FAMILIES)}."
        )
    return recipe


def cmd_train(args):
    import keras

    import keras_vae as kv
    from keras_vae import runner

    _set_data_dir(args.data_dir)
    if os.path.exists(args.output) and not args.overwrite:
        raise UserError(
            f"Output {args.output!r} already exists; pass --overwrite to "
            "replace it."
        )
    _output_dir_of(args.output)
    recipe = _read_recipe(args.recipe) if args.recipe else _recipe_from_flags(args)
    options = runner.parse_options(recipe)
    if args.max_examples:
        if recipe["family"] != "image_vae":
            raise UserError("--max-examples is for image recipes.")
        options.train_images = options.eval_images = args.max_examples
    callbacks = []
    if args.samples_every:
        samples_dir = args.output.rstrip("/\\") + "_samples"
        callbacks.append(
            kv.callbacks.SampleGrid(
                samples_dir, every_n_epochs=args.samples_every
            )
        )
        _say(f"Sample grids go to {samples_dir}/.")
    _say(
        f"Training a {recipe['family']} recipe for {recipe.get('epochs', '?')} "
        f"epochs (backend {keras.backend.backend()})."
    )
    name = os.path.basename(os.path.abspath(args.output))
    metadata = runner.run(
        recipe,
        options,
        args.output,
        name,
        run_dir=args.run_dir,
        command="keras-vae " + shlex.join(args.argv),
        callbacks=callbacks,
    )
    best = {k: v for k, v in metadata.items() if k.startswith("best_") and k != "best_epoch"}
    shown = ", ".join(f"{k[5:]} {v:.2f}" for k, v in best.items())
    _say(
        f"Saved preset folder {args.output} (best epoch {metadata.get('best_epoch')}: "
        f"{shown}) after {metadata['train_seconds']:.0f} s of training."
    )
    return 0


def cmd_evaluate(args):
    _set_data_dir(args.data_dir)
    model, metadata = _load_model(args.model)
    dataset = metadata.get("dataset")
    if isinstance(dataset, dict):  # preset metadata: {"name": ..., splits}
        dataset = dataset.get("name")
    dataset = args.dataset or dataset
    if not dataset:
        raise UserError(
            "Pass --dataset: the model's metadata does not name its data set."
        )
    x, _ = _load_data(dataset, args.split, args.max_examples)
    text = _is_text_model(model)
    if not text:
        model.validate_inputs(x)
    _say(f"Evaluating on {len(x)} {'sentences' if text else 'examples'}...")
    if not getattr(model, "compiled", False):
        model.compile(optimizer="adam")  # evaluate() needs it; not trained
    results = {
        k: float(v)
        for k, v in model.evaluate(
            x, batch_size=args.batch_size, return_dict=True, verbose=0
        ).items()
    }
    if text and args.num_samples:
        # NLL, per-word perplexity, KL, mutual information, active units.
        from keras_vae.metrics import evaluate_text_model
        from keras_vae.models import TextVAE

        if isinstance(model, TextVAE):
            _say(f"Importance sampling with {args.num_samples} samples...")
        results.update(
            evaluate_text_model(
                model, x, num_samples=args.num_samples, seed=args.seed
            )
        )
    elif not text and hasattr(model, "elbo") and hasattr(model, "log_likelihood"):
        results["elbo"] = float(model.elbo(x, seed=args.seed).mean())
        if args.num_samples:
            _say(f"Importance sampling with {args.num_samples} samples...")
            ll = model.log_likelihood(
                x, num_samples=args.num_samples, seed=args.seed
            )
            results[f"log_likelihood_k{args.num_samples}"] = float(ll.mean())
    return _report(args, dataset, len(x), results)


def _is_text_model(model):
    import keras_vae as kv

    return isinstance(model, kv.LSTMLanguageModel)  # TextVAE is one too


def _report(args, dataset, count, results):
    results = {
        "dataset": dataset,
        "split": args.split,
        "examples": count,
        **results,
    }
    if args.json:
        _say(json.dumps(results))
    else:
        for key, value in results.items():
            shown = f"{value:.4f}" if isinstance(value, float) else value
            _say(f"{key:>24}: {shown}")
    return 0


def cmd_sample(args):
    from keras_vae import plotting

    if args.output is not None:
        _output_dir_of(args.output)
    model, _ = _load_model(args.model)
    if _is_text_model(model):
        return _sample_sentences(model, args)
    args.output = args.output or "samples.png"
    _output_dir_of(args.output)
    _say(f"Sampling {args.num_samples} images (seed {args.seed})...")
    images = model.sample(args.num_samples, seed=args.seed)
    plotting.image_grid(
        images,
        num_columns=args.columns,
        path=args.output,
        title=f"{args.model}: seed {args.seed}",
    )
    if args.npy:
        import numpy as np

        np.save(os.path.splitext(args.output)[0] + ".npy", images)
    _say(f"Wrote {args.output}.")
    return 0


def _sample_sentences(model, args):
    """Prints sampled sentences; with `--output`, also writes them, one
    per line."""
    if args.npy or args.columns:
        raise UserError("--npy and --columns are for image models.")
    _say(f"Sampling {args.num_samples} sentences (seed {args.seed})...")
    sentences = model.sample(args.num_samples, seed=args.seed)
    for sentence in sentences:
        print(sentence)
    if args.output:
        tmp = args.output + ".part"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(s + "\n" for s in sentences))
        os.replace(tmp, args.output)
        _say(f"Wrote {args.output}.")
    return 0


def cmd_export(args):
    from keras_vae.export import export_saved_model

    model, _ = _load_model(args.model)
    _say(f"Exporting to {args.output}/{args.version}/ (TF SavedModel)...")
    try:
        path = export_saved_model(
            model,
            args.output,
            version=args.version,
            score_num_samples=args.score_num_samples,
            overwrite=args.overwrite,
        )
    except TypeError as error:  # the model has no serving signatures
        raise UserError(str(error)) from None
    _say(
        f"Wrote {path} with signatures serving_default, encode, decode, "
        "sample, score. Inspect it with: saved_model_cli show --all --dir "
        f"{path}"
    )
    return 0


# ----------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vae",
        description=(
            "Train, evaluate, sample and export keras-vae models. MODEL is a "
            "preset name, a preset folder, a preset URL or a .keras file."
        ),
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("presets", help="list the built-in presets")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="full descriptions"
    )
    p.set_defaults(run=cmd_presets)

    from keras_vae.runner.options import RUN_DIR_HELP

    p = verbs.add_parser(
        "train",
        help="train a VAE on a data set (or any recipe); writes a preset folder",
        description=(
            "Train with the zoo's resumable runner (the one `python -m zoo.train` "
            "uses): a VAE built from the flags below, or a recipe file. The run "
            "keeps its state in a run folder (--run-dir): stop it (Ctrl-C) and "
            "run the same command again to resume. Logged: loss / val_loss is "
            "the training objective (under KL warm-up its KL weight is below 1); "
            "val_neg_elbo is the true negative ELBO, whose best epoch's weights "
            "are kept and written."
        ),
    )
    p.add_argument(
        "--dataset",
        default="binarized_mnist",
        help="data set name (default binarized_mnist)",
    )
    p.add_argument("--output", required=True, help="preset folder to write")
    p.add_argument(
        "--recipe",
        metavar="FILE",
        help="train this recipe (JSON, e.g. zoo/recipes/vae_binarized_mnist.json) "
        "instead of one built from the flags",
    )
    p.add_argument("--run-dir", metavar="DIR", help=RUN_DIR_HELP)
    p.add_argument("--preset", help="start from this preset (fine-tune)")
    p.add_argument("--epochs", type=_positive(int), default=10, help="default 10")
    p.add_argument("--batch-size", type=_positive(int), default=128, help="default 128")
    p.add_argument(
        "--learning-rate", type=_positive(float), default=1e-3, help="Adam's, default 1e-3"
    )
    p.add_argument("--latent-dim", type=_positive(int), default=32, help="default 32")
    p.add_argument("--architecture", choices=("conv", "mlp"), default="conv")
    p.add_argument(
        "--hidden-dims",
        type=_int_tuple,
        default=(32, 64),
        help="comma-separated sizes, e.g. 32,64",
    )
    p.add_argument(
        "--likelihood", choices=("bernoulli", "gaussian"), default="bernoulli"
    )
    p.add_argument(
        "--kl-warmup-steps",
        type=int,
        default=0,
        help="steps over which the KL weight rises from 0 to 1 (default 0: none)",
    )
    p.add_argument(
        "--eval-samples",
        type=int,
        default=0,
        help="importance samples of the test NLL measured at the end "
        "(default 0: ELBO and active units only)",
    )
    p.add_argument(
        "--max-examples",
        type=_positive(int),
        help="use only the first N examples of each split",
    )
    p.add_argument(
        "--samples-every",
        type=int,
        default=0,
        help="save a sample grid every N epochs to OUTPUT_samples/",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="folder holding the data sets")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=cmd_train)

    p = verbs.add_parser("evaluate", help="ELBO and log-likelihood on data")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--dataset", help="defaults to the preset's data set")
    p.add_argument("--split", default="test")
    p.add_argument(
        "--num-samples",
        type=int,
        default=100,
        help="importance samples for log p(x); 0 skips it",
    )
    p.add_argument("--max-examples", type=_positive(int))
    p.add_argument("--batch-size", type=_positive(int), default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="folder holding the data sets")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.set_defaults(run=cmd_evaluate)

    p = verbs.add_parser(
        "sample", help="write a PNG grid of samples (text models: print sentences)"
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument(
        "--output",
        help="PNG path (default samples.png); for a text model, a text file "
        "that gets one sentence per line (default: print only)",
    )
    p.add_argument("--num-samples", type=_positive(int), default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--columns", type=_positive(int))
    p.add_argument(
        "--npy",
        action="store_true",
        help="also save the images as a .npy array",
    )
    p.set_defaults(run=cmd_sample)

    p = verbs.add_parser("export", help="write a TF Serving SavedModel")
    p.add_argument("model", metavar="MODEL")
    p.add_argument(
        "--output",
        required=True,
        help="model base folder; the version goes below it",
    )
    p.add_argument("--version", type=_positive(int), default=1)
    p.add_argument(
        "--score-num-samples",
        type=_positive(int),
        default=1,
        help="1: negative ELBO; k>1: importance-sampled NLL",
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=cmd_export)
    return parser


def main(argv=None):
    """Runs the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except KeyboardInterrupt:
        from keras_vae.runner import INTERRUPTED

        print(INTERRUPTED, file=sys.stderr, flush=True)
        return 130
    except _user_errors() as error:
        if os.environ.get("KERAS_VAE_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"keras-vae: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
