"""Command-line options of a run, shared by `python -m zoo.train` and
`keras-vae train`."""

import argparse
from pathlib import Path

from keras_vae import presets

RUN_DIR_HELP = (
    "folder of the run's resumable state (checkpoints, best weights, cached "
    "evaluation); default <KERAS_HOME or ~/.keras>/keras_vae/runs/<name>-<hash>, "
    "the hash over the recipe, the options and the backend, so running the "
    "same command again resumes the run"
)


def positive_int(text):
    """`argparse` type of the count options (epochs, steps, images...):
    an int >= 1, so `0` is refused rather than read as "not given"."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip():
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def add_run_arguments(parser):
    """Adds `--run-dir`, `--evaluate-only` and `--switch-backend` to `parser`."""
    parser.add_argument("--run-dir", default=None, metavar="DIR", help=RUN_DIR_HELP)
    parser.add_argument(
        "--evaluate-only",
        action="store_true",
        help="stop an interrupted run where it is and evaluate its best weights "
        "(recorded in the metadata)",
    )
    parser.add_argument(
        "--switch-backend",
        action="store_true",
        help="continue a run folder started on another Keras backend (e.g. a CPU "
        "run on TensorFlow, continued on a GPU with JAX): the checkpoint's weights, "
        "optimizer state and random states load on every backend; the random "
        "draws from then on differ from an uninterrupted run. The backends used "
        "are recorded in run.json and the preset's metadata. Name the folder "
        "with --run-dir: the default one is per backend",
    )


def parse_options(recipe, argv=(), **values):
    """The options of a run of `recipe`: the family's defaults, `argv`
    parsed, then `values` set.

    Example:

    >>> from keras_vae import runner
    >>> options = runner.parse_options({"family": "image_vae"}, ["--epochs", "2"])
    >>> options.epochs, options.evaluate_only
    (2, False)
    """
    from keras_vae.runner.run import family_of

    parser = argparse.ArgumentParser()
    family_of(recipe).add_arguments(parser)
    add_run_arguments(parser)
    options = parser.parse_args(list(argv))
    for key, value in values.items():
        setattr(options, key, value)
    return options


def output_folder(error, name, output, changed):
    """The preset folder a run writes: `output`, or by default
    `presets.zoo_dir() / name` (the built-in preset's own folder).

    The default folder holds the shipped preset, so a run that trains or
    measures something other than the recipe (`changed`: the options given
    that do so, e.g. `{"--train-images": True}`) must name its own folder;
    `error(message)` (e.g. `parser.error`) says so instead.
    """
    if output is not None:
        return Path(output)
    given = sorted(name for name, is_given in changed.items() if is_given)
    if given:
        error(
            f"{', '.join(given)} changes what the shipped recipe trains or "
            f"measures: pass --output DIR (the default, {presets.zoo_dir() / name}, "
            "holds the shipped preset)"
        )
    return presets.zoo_dir() / name
