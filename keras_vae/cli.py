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
    keras-vae compress vae_binarized_mnist images.npy images.kvz
    keras-vae decompress vae_binarized_mnist images.kvz images.npy

Errors print one line, `keras-vae: error: ...`: user errors (unknown
preset, missing data directory, bad path, a file that would be
overwritten, a tampered preset) exit with status 2, as argparse's own
usage errors do; anything unexpected exits with status 1. Set
`KERAS_VAE_DEBUG=1` for the full traceback.
"""

import argparse
import contextlib
import functools
import json
import os
import shlex
import sys

VALID_SPLIT = {"binarized_mnist": "valid"}
MODEL_HELP = "a preset name (see `keras-vae presets`), a preset folder or URL, or a .keras file"
DATA_DIR_HELP = (
    "folder holding the data sets (default: $KERAS_VAE_DATA_DIR, then the library's folders)"
)
TEXT_DATASETS = ("ptb",)


class UserError(Exception):
    """A problem with the command's arguments or files (no traceback)."""


def _user_errors():
    from keras_vae.datasets import DatasetNotFoundError
    from keras_vae.presets import PresetIntegrityError
    from keras_vae.runner.files import RunFolderError

    return (
        UserError,
        ValueError,  # PresetIntegrityError is one
        OSError,  # FileNotFoundError, FileExistsError, PermissionError...
        ImportError,  # an optional dependency (matplotlib...) is missing
        DatasetNotFoundError,
        PresetIntegrityError,
        RunFolderError,
    )


def _say(message):
    """Progress for the user (`evaluate --json` sends it to stderr)."""
    print(message, file=sys.stdout, flush=True)


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

    if "://" not in spec and spec not in presets.list_presets():
        # A preset folder whose writer was killed between its renames.
        presets.recover_preset_dir(spec)
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


# The metrics `keras-vae presets` shows first, when a preset has them (a
# preset's metadata may name its own: "headline_metrics": [...]).
HEADLINE_METRICS = (
    "test_nll",
    "perplexity",
    "nll",
    "factor_vae",
    "mig",
    "test_mse",
    "test_perplexity",
    "test_elbo",
)


def _headline(metadata, count=2):
    """`name=value` of the preset's headline metrics (all with `count=None`)."""
    metrics = {
        k: v
        for k, v in (metadata.get("metrics") or {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    order = [*metadata.get("headline_metrics", ()), *HEADLINE_METRICS]
    names = [k for k in dict.fromkeys(order) if k in metrics]
    if count is None:
        names += [k for k in metrics if k not in names]
    names = names[:count] if count else names
    return "  ".join(
        f"{k}={metrics[k]:.4g}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
        for k in names
    )


def cmd_presets(args):
    import textwrap

    from keras_vae import presets

    wrap = dict(initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)
    names = presets.list_presets()
    if not names:
        _say("No built-in presets are installed.")
        return 0
    for name in names:
        metadata = presets.load_metadata(name)
        description = " ".join(metadata.get("description", "").split())
        if args.verbose:
            _say(name)
            for text in (description, _headline(metadata, None)):
                _say(textwrap.fill(text, 88, **wrap))
        else:
            _say(f"{name:<22} {_headline(metadata)}")
            short = textwrap.shorten(
                description, 84, placeholder=" ...", break_on_hyphens=False
            )
            _say(f"    {short}")
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
    # Before any training: an existing folder is replaced only with
    # --overwrite and only if it is a preset folder; the parent folders are
    # created and must be writable.
    runner.files.check_output(args.output, args.overwrite)
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
        overwrite=args.overwrite,
    )
    best = {k: v for k, v in metadata.items() if k.startswith("best_") and k != "best_epoch"}
    shown = ", ".join(f"{k[5:]} {v:.2f}" for k, v in best.items())
    _say(
        f"Saved preset folder {args.output} (best epoch {metadata.get('best_epoch')}: "
        f"{shown}) after {metadata['train_seconds']:.0f} s of training."
    )
    return 0


def cmd_evaluate(args):
    if not args.json:
        return _report(args, *_evaluate(args))
    # stdout holds the JSON only: progress (ours and the library's) to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        measured = _evaluate(args)
    return _report(args, *measured)


def _evaluate(args):
    """Returns `(dataset, count, results)` of `keras-vae evaluate`."""
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
    return dataset, len(x), results


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
        print(json.dumps(results), flush=True)
    else:
        for key, value in results.items():
            shown = f"{value:.4f}" if isinstance(value, float) else value
            _say(f"{key:>24}: {shown}")
    return 0


def _refuse_existing(path, args):
    """Refuses to replace file `path` without `--overwrite`."""
    if os.path.exists(path) and not args.overwrite:
        raise UserError(f"{path!r} already exists; pass --overwrite to replace it.")


def _need_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError(
            "writing a PNG needs matplotlib, which the base install lacks: "
            "pip install 'keras-vae[plot]', or pass --output FILE.npy to save the "
            "images as a NumPy array."
        ) from None


def cmd_sample(args):
    if args.output is not None:
        _output_dir_of(args.output)
        _refuse_existing(args.output, args)
    model, _ = _load_model(args.model)
    if _is_text_model(model):
        return _sample_sentences(model, args)
    args.output = args.output or "samples.png"
    npy_only = args.output.lower().endswith(".npy")
    npy_path = args.output if npy_only else os.path.splitext(args.output)[0] + ".npy"
    _refuse_existing(args.output, args)
    if args.npy:
        _refuse_existing(npy_path, args)
    if not npy_only:
        _need_matplotlib()
    _say(f"Sampling {args.num_samples} images (seed {args.seed})...")
    images = model.sample(args.num_samples, seed=args.seed)
    if not npy_only:
        from keras_vae import plotting

        plotting.image_grid(
            images,
            num_columns=args.columns,
            path=args.output,
            title=f"{args.model}: seed {args.seed}",
        )
        _say(f"Wrote {args.output}.")
    if npy_only or args.npy:
        import numpy as np

        np.save(npy_path, images)
        _say(f"Wrote {npy_path}.")
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
        tmp = f"{args.output}.{os.getpid()}.part"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("".join(s + "\n" for s in sentences))
            os.replace(tmp, args.output)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        _say(f"Wrote {args.output}.")
    return 0


def cmd_export(args):
    from keras_vae.export import export_saved_model

    target = os.path.join(args.output, str(args.version))
    already = (
        f"{target!r} already exists; pass --overwrite to replace it, or another --version."
    )
    if os.path.exists(target) and not args.overwrite:
        raise UserError(already)  # before the (slow) model loading
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
    except FileExistsError:  # the library names its argument, not our flag
        raise UserError(already) from None
    _say(
        f"Wrote {path} with signatures serving_default, encode, decode, "
        "sample, score. Inspect it with: saved_model_cli show --all --dir "
        f"{path}"
    )
    return 0


# Compression (issue 22): keras_vae.compression on .npy / PNG files.


def _progress(verb):
    """A `progress(done, total)` callback printing to stderr at most once a second."""
    import time

    last = [time.monotonic()]

    def report(done, total):
        now = time.monotonic()
        if done == total or now - last[0] >= 1.0:
            last[0] = now
            print(f"{verb} {done}/{total} images", file=sys.stderr, flush=True)

    return report


def _read_images(path, shape):
    import numpy as np

    if not os.path.isfile(path):
        raise UserError(f"Input file {path!r} does not exist.")
    if path.lower().endswith(".png"):
        from PIL import Image

        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"))
        if not np.isin(pixels, (0, 255)).all():
            raise UserError(f"{path} is not a black-and-white image (pixels must be 0 or 255).")
        images = (pixels[None] // 255).astype("float32")
    elif path.lower().endswith(".npy"):
        images = np.load(path, allow_pickle=False)
    else:
        raise UserError(f"Input {path!r} must be a .npy or .png file.")
    shape = tuple(shape)
    if images.shape == shape or (shape[-1] == 1 and images.shape == shape[:-1]):
        images = images[None]  # one image
    if shape[-1] == 1 and images.shape[1:] == shape[:-1]:
        images = images[..., None]
    return images


def _write_output(path, write, overwrite):
    _output_dir_of(path)
    if os.path.exists(path) and not overwrite:
        raise UserError(f"{path!r} already exists; pass --overwrite to replace it.")
    tmp = f"{path}.{os.getpid()}.part"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def cmd_compress(args):
    from keras_vae import compression

    model, metadata = _load_model(args.model)
    images = _read_images(args.input, model.input_shape_)
    _say(f"Compressing {len(images)} images with {args.model}...")
    data = compression.compress(
        model,
        images,
        preset=metadata.get("name") or os.path.basename(args.model.rstrip("/")),
        batch_size=args.batch_size,
        progress=_progress("compressed"),
    )

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    _write_output(args.output, write, args.overwrite)
    header = compression.read_header(data)
    _say(
        f"Wrote {args.output}: {len(data)} bytes, {header['bits_per_pixel']:.4f} bits per "
        f"pixel ({os.path.getsize(args.input)} bytes in)."
    )
    return 0


def cmd_decompress(args):
    import numpy as np

    from keras_vae import compression

    if not os.path.isfile(args.input):
        raise UserError(f"Input file {args.input!r} does not exist.")
    as_png = args.output.lower().endswith(".png")
    if not (as_png or args.output.lower().endswith(".npy")):
        raise UserError(f"Output {args.output!r} must be a .npy or .png file.")
    with open(args.input, "rb") as f:
        data = f.read()
    header = compression.read_header(data)
    if as_png and header["count"] != 1:
        raise UserError(
            f"{args.input} holds {header['count']} images; a PNG holds one. Write a .npy."
        )
    model, _ = _load_model(args.model)
    images = compression.decompress(model, data, progress=_progress("decompressed"))

    def write(tmp):
        if as_png:
            from PIL import Image

            pixels = (np.asarray(images[0]).reshape(images.shape[1:3]) * 255).astype("uint8")
            Image.fromarray(pixels, mode="L").convert("1").save(tmp, format="PNG")
        else:
            with open(tmp, "wb") as f:
                np.save(f, images)

    _write_output(args.output, write, args.overwrite)
    _say(f"Wrote {args.output}: {len(images)} images, verified against their checksum.")
    return 0


# ----------------------------------------------------------------------


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default: `(default: X)` added by
    argparse, or said in the help text where the default is not a value
    (`None`: e.g. "(default: the preset's data set)")."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default is None or action.required:
            return text
        if isinstance(action.default, (tuple, list)):
            return text + " (default: " + ",".join(map(str, action.default)) + ")"
        return super()._get_help_string(action)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vae",
        description=(
            "Train, evaluate, sample and export keras-vae models. MODEL is a "
            "preset name, a preset folder, a preset URL or a .keras file."
        ),
    )
    verbs = parser.add_subparsers(
        dest="verb",
        metavar="VERB",
        required=True,
        parser_class=functools.partial(argparse.ArgumentParser, formatter_class=_HelpFormatter),
    )

    p = verbs.add_parser("presets", help="list the built-in presets")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="full descriptions and all metrics"
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
        help="data set name",
    )
    p.add_argument(
        "--output",
        required=True,
        help="preset folder to write (its parent folders are created); required",
    )
    p.add_argument(
        "--recipe",
        metavar="FILE",
        help="train this recipe (JSON, e.g. zoo/recipes/vae_binarized_mnist.json) "
        "instead of one built from the flags (default: none, the flags' recipe)",
    )
    p.add_argument("--run-dir", metavar="DIR", help=RUN_DIR_HELP)
    p.add_argument(
        "--preset",
        help="start from this preset's weights (fine-tune) (default: none, random weights)",
    )
    p.add_argument("--epochs", type=_positive(int), default=10, help="training epochs")
    p.add_argument("--batch-size", type=_positive(int), default=128, help="examples per step")
    p.add_argument(
        "--learning-rate", type=_positive(float), default=1e-3, help="Adam's learning rate"
    )
    p.add_argument(
        "--latent-dim", type=_positive(int), default=32, help="latent dimensions"
    )
    p.add_argument(
        "--architecture",
        choices=("conv", "mlp"),
        default="conv",
        help="encoder and decoder networks",
    )
    p.add_argument(
        "--hidden-dims",
        type=_int_tuple,
        default=(32, 64),
        help="hidden layer sizes (conv: filters per stage), comma-separated",
    )
    p.add_argument(
        "--likelihood",
        choices=("bernoulli", "gaussian"),
        default="bernoulli",
        help="the decoder's distribution of a pixel",
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
        help="use only the first N examples of each split (default: all)",
    )
    p.add_argument(
        "--samples-every",
        type=int,
        default=0,
        help="save a sample grid every N epochs to OUTPUT_samples/ (0: never)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the run")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing preset folder --output (never another kind of folder)",
    )
    p.set_defaults(run=cmd_train)

    p = verbs.add_parser("evaluate", help="ELBO and log-likelihood on data")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--dataset", help="data set (default: the preset's data set)")
    p.add_argument("--split", default="test", help="split of the data set")
    p.add_argument(
        "--num-samples",
        type=int,
        default=100,
        help="importance samples for log p(x); 0 skips it",
    )
    p.add_argument(
        "--max-examples",
        type=_positive(int),
        help="evaluate the first N examples of the split (default: all)",
    )
    p.add_argument("--batch-size", type=_positive(int), default=256, help="examples per batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line on stdout (progress goes to stderr)",
    )
    p.set_defaults(run=cmd_evaluate)

    p = verbs.add_parser(
        "sample", help="write a PNG grid of samples (text models: print sentences)"
    )
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "--output",
        help="PNG path, or a .npy path for the images as a NumPy array (no matplotlib "
        "needed); for a text model, a text file that gets one sentence per line "
        "(default: samples.png; text models: print only)",
    )
    p.add_argument("--num-samples", type=_positive(int), default=64, help="samples to draw")
    p.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    p.add_argument(
        "--columns",
        type=_positive(int),
        help="images per row of the grid (default: about the square root of the count)",
    )
    p.add_argument(
        "--npy",
        action="store_true",
        help="also save the images as a .npy array beside the PNG",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (without it, an existing file is an error)",
    )
    p.set_defaults(run=cmd_sample)

    p = verbs.add_parser("export", help="write a TF Serving SavedModel")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument(
        "--output",
        required=True,
        help="model base folder; the version goes below it; required",
    )
    p.add_argument(
        "--version", type=_positive(int), default=1, help="version folder under --output"
    )
    p.add_argument(
        "--score-num-samples",
        type=_positive(int),
        default=1,
        help="what the score signature computes: 1: negative ELBO; k>1: "
        "importance-sampled NLL with k samples",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing --output/--version folder"
    )
    p.set_defaults(run=cmd_export)

    p = verbs.add_parser("compress", help="compress binary images losslessly (bits-back)")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("input", metavar="INPUT", help=".npy array of binary images, or a PNG")
    p.add_argument("output", metavar="OUTPUT", help="the compressed file (.kvz)")
    p.add_argument("--batch-size", type=_positive(int), default=32, help="images per model call")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.set_defaults(run=cmd_compress)

    p = verbs.add_parser("decompress", help="decompress a .kvz file bit-exactly")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("input", metavar="INPUT", help="a file written by `keras-vae compress`")
    p.add_argument("output", metavar="OUTPUT", help=".npy (any count) or .png (one image)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.set_defaults(run=cmd_decompress)
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
    except Exception as error:
        if os.environ.get("KERAS_VAE_DEBUG"):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, _user_errors()):
            print(f"keras-vae: error: {message}", file=sys.stderr, flush=True)
            return 2
        print(
            f"keras-vae: error: {type(error).__name__}: {message} (unexpected; set "
            "KERAS_VAE_DEBUG=1 for the traceback)",
            file=sys.stderr,
            flush=True,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
