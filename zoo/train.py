"""Trains a built-in preset from its recipe and writes its preset folder.

Usage:

    python -m zoo.train NAME [options]      # NAME: a file in zoo/recipes/
    python -m zoo.train NAME --help         # that recipe's options

Every preset's recipe is data in `zoo/recipes/NAME.json`; the one runner
(`keras_vae.runner.run`) trains, resumes and evaluates any of them. The run
keeps its state in a run folder (`--run-dir`, by default
`<KERAS_HOME or ~/.keras>/keras_vae/runs/NAME-<hash>`): stop it (Ctrl-C, a
kill, a reboot) and run the same command again to resume. At the end the
model is evaluated with the project's own code and the preset folder is
written atomically to `--output` (default: the built-in preset's own folder,
`keras_vae/preset_files/NAME`, which a run with smoke options must not
replace).

Smoke runs, as the tests do them:

    python -m zoo.train vae_binarized_mnist --epochs 1 --eval-samples 10 \\
        --eval-images 100 --train-images 256 --output /tmp/preset
    python -m zoo.train vq_vae_mnist --epochs 1 --prior-epochs 1 \\
        --train-images 256 --test-images 64 --output /tmp/vq_preset
    python -m zoo.train beta_vae_sprites --steps 4 --steps-per-epoch 2 \\
        --eval-fraction 0.002 --validation-images 64 --output /tmp/sprites
    python -m zoo.train lstm_lm_ptb --epochs 1 --train-sentences 96 \\
        --valid-sentences 32 --eval-samples 2 --eval-sentences 8 \\
        --override hidden_dim=8 --override embedding_dim=8 --output /tmp/lm

The logged quantities: `loss` / `val_loss` is the training objective, whose
KL weight is below 1 during KL warm-up; `val_neg_elbo` is the true negative
ELBO, which the best weights and early stopping follow.
"""

import argparse
import shlex
import sys

from keras_vae import runner
from zoo import recipes


def parser_for(name, prog="python -m zoo.train"):
    """The command-line parser of preset `name` (its family's options)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n")[0],
        epilog="Run the same command again to resume an interrupted run.",
    )
    parser.add_argument("preset", choices=recipes.names(), help="the preset to train")
    parser.add_argument(
        "--output",
        default=None,
        metavar="DIR",
        help=f"preset folder to write (default: keras_vae/preset_files/{name})",
    )
    runner.add_run_arguments(parser)
    if name in recipes.names():
        runner.family_of(recipes.load(name)).add_arguments(parser)
    return parser


def main(argv=None, prog="python -m zoo.train", callbacks=()):
    """Runs `python -m zoo.train` with `argv`; returns the preset's metadata.

    `callbacks`: extra callbacks for every `fit` (tests). On Ctrl-C prints
    one line and exits with status 130.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    name = argv[0] if argv and not argv[0].startswith("-") else None
    parser = parser_for(name, prog)
    options = parser.parse_args(argv)
    recipe = recipes.load(options.preset)
    family = runner.family_of(recipe)
    recipe = family.apply_options(recipe, options, parser.error)
    output = runner.output_folder(
        parser.error, options.preset, options.output, family.changed_options(options)
    )
    try:
        return runner.run(
            recipe,
            options,
            output,
            options.preset,
            run_dir=options.run_dir,
            command=f"{prog} " + shlex.join(argv),
            callbacks=callbacks,
        )
    except KeyboardInterrupt:
        print(runner.INTERRUPTED, file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except (runner.files.RunFolderError, FileExistsError) as error:
        # A run folder in use or started with other options, an output
        # that is not a preset folder: one line, before any training.
        parser.exit(2, f"{prog}: error: {error}\n")


def main_as(prog):
    """`main` under another program name: the older per-family commands
    (`python -m zoo.train_text`, `zoo.train_sprites`, `zoo.train_vq_vae`),
    recorded in the shipped presets' metadata, take the same options."""

    def main_under_prog(argv=None, callbacks=()):
        return main(argv, prog=prog, callbacks=callbacks)

    return main_under_prog


if __name__ == "__main__":
    main()
