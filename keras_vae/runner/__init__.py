"""The resumable training runner: a recipe (data) in, a preset folder out.

`python -m zoo.train NAME` (every built-in preset, its recipe in
`zoo/recipes/NAME.json`) and `keras-vae train` both call `run`. See
`keras_vae/runner/run.py` for how a run goes, where its state lives and
what each logged quantity is.
"""

from keras_vae.runner import files
from keras_vae.runner.epoch_log import EpochLog
from keras_vae.runner.evaluation import cached_log_likelihood
from keras_vae.runner.families import FAMILIES
from keras_vae.runner.keep_best import KeepBest
from keras_vae.runner.negative_elbo import NegativeELBO
from keras_vae.runner.options import (
    RUN_DIR_HELP,
    add_run_arguments,
    output_folder,
    parse_options,
    positive_int,
)
from keras_vae.runner.resume_state import ResumeState
from keras_vae.runner.run import INTERRUPTED, family_of, run, training_summary
from keras_vae.runner.stage import Stage

__all__ = [
    "FAMILIES",
    "INTERRUPTED",
    "RUN_DIR_HELP",
    "EpochLog",
    "KeepBest",
    "NegativeELBO",
    "ResumeState",
    "Stage",
    "add_run_arguments",
    "cached_log_likelihood",
    "family_of",
    "files",
    "output_folder",
    "parse_options",
    "positive_int",
    "run",
    "training_summary",
]
