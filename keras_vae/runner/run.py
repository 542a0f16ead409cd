"""The run loop: one recipe in, one evaluated preset folder out.

How a run goes (`run`):

1. The run folder (`run_dir`, or by default
   `<KERAS_HOME or ~/.keras>/keras_vae/runs/<name>-<hash>`, the hash taken
   over the recipe, the options that change the run and the backend) is
   created or found again, and locked for this process (`run.lock`: a
   second run of the same recipe is refused while this one lives); a run
   folder started with other options is refused (`run.json`), and one
   started on another backend is continued only with `--switch-backend`
   (the checkpoints load on every backend); the command
   is appended to its `commands.json`. Before that, the output folder is
   checked: writable, and replaced only if it is a preset folder.
2. The family's hooks (`FAMILIES[recipe["family"]]`) load the data and
   build the model after `set_random_seed(recipe["seed"])` (Keras's, minus
   TensorFlow on the JAX and torch backends).
3. Each training stage is fitted with `BackupAndRestore` (a killed run
   continues from its last finished epoch, or the one before if the kill
   tore the latest checkpoint), `KeepBest` on the stage's monitor,
   `EarlyStopping` / `ReduceLROnPlateau` whose counters `ResumeState`
   saves with the random states, and `EpochLog` (one line per epoch with
   its seconds and the time left). A finished stage is not run again.
4. The model with the kept weights is evaluated by the family (cached in
   the run folder where it is long), and the preset folder is written
   with `presets.save_to_preset` (metadata: the recipe, the commands, the
   metrics, the hardware, the times).

The logged quantities: `loss` / `val_loss` is the training objective (under
KL warm-up or free bits, the KL is weighted below 1, so it is below the
negative ELBO and not comparable across epochs); `val_neg_elbo` is the true
negative ELBO (reconstruction + full KL), which the best weights and early
stopping follow. A language model has no KL: its `val_loss` is its NLL.
"""

import json
import sys
import time
from pathlib import Path

import keras

from keras_vae import presets
from keras_vae.runner import files
from keras_vae.runner.epoch_log import EpochLog
from keras_vae.runner.families import FAMILIES
from keras_vae.runner.keep_best import KeepBest
from keras_vae.runner.resume_state import ResumeState

INTERRUPTED = "interrupted; run the same command again to resume"


def family_of(recipe):
    """The `Family` that runs `recipe` (from its `"family"` key)."""
    name = recipe.get("family")
    if name not in FAMILIES:
        raise ValueError(
            f"The recipe's family {name!r} is not one of {sorted(FAMILIES)}."
        )
    return FAMILIES[name]()


def _stage_files(stage):
    s = stage.suffix
    return {
        "backup": f"backup{s}",
        "state": f"callback_state{s}",
        "best": f"best{s}",
        "seconds": f"train_seconds{s}",
        "final": f"final{s}.weights.h5",
    }


def _weights_path(run_dir, stage):
    names = _stage_files(stage)
    name = f"{names['best']}.weights.h5" if stage.monitor else names["final"]
    return Path(run_dir) / name


def _train_stage(model, stage, run_dir, extra_callbacks, evaluate_only):
    """Fits (or resumes, or skips a finished) `stage`; returns its record
    and leaves the stage's kept weights in `model`."""
    done_path = Path(run_dir) / "done.json"
    done = files.read_json(done_path, {})
    names = _stage_files(stage)
    weights = _weights_path(run_dir, stage)
    if stage.name in done:
        print(f"{stage.name}: already done in {run_dir}.", flush=True)
        model.load_weights(weights)
        return done[stage.name]
    log = EpochLog(run_dir, stage.name, names["seconds"], stage.every_batches)
    keep_best = KeepBest(run_dir, stage.monitor, names["best"]) if stage.monitor else None
    if evaluate_only:
        if keep_best is None or not weights.is_file():
            raise RuntimeError(
                f"--evaluate-only: stage {stage.name!r} has no best weights in {run_dir}."
            )
        record = {
            "train_seconds": log.previous,
            "best": keep_best.record,
            "epochs_requested": stage.epochs,
            "epochs_completed": files.backed_up_epochs(run_dir, names["backup"]),
            "stopped_early_by": "--evaluate-only",
        }
    else:
        schedule = {}
        if stage.lr_decay:
            schedule["lr_decay"] = keras.callbacks.ReduceLROnPlateau(
                monitor=stage.monitor,
                factor=stage.lr_decay["factor"],
                patience=stage.lr_decay["patience"],
                min_lr=stage.lr_decay["min_learning_rate"],
                mode="min",
            )
        if stage.early_stopping_patience:
            schedule["early_stopping"] = keras.callbacks.EarlyStopping(
                monitor=stage.monitor, patience=stage.early_stopping_patience, mode="min"
            )
        callbacks = [
            files.backup_and_restore(run_dir, names["backup"]),
            *stage.callbacks,
            *([keep_best] if keep_best else []),
            *schedule.values(),
            ResumeState(run_dir, schedule, names["state"]),
            log,
            *extra_callbacks,
        ]
        completed = files.backed_up_epochs(run_dir, names["backup"]) or 0
        stage.fit(callbacks, completed)
        if keep_best is None:
            tmp = weights.with_name(f"part.{weights.name}")
            model.save_weights(tmp)
            tmp.replace(weights)
        record = {
            "train_seconds": log.seconds(),
            "epochs_requested": stage.epochs,
            "epochs_completed": files.backed_up_epochs(run_dir, names["backup"]),
            "last_epoch_logs": log.history[-1] if log.history else None,
        }
        if keep_best is not None:
            record["best"] = keep_best.record
        if stage.record is not None:
            record.update(stage.record(model))
    if not weights.is_file():
        raise RuntimeError(f"No {weights.name} in {run_dir}: did training run?")
    done[stage.name] = record
    files.write_json(done_path, done)
    files.remove_backup(run_dir, names["backup"])
    model.load_weights(weights)
    return record


def run(
    recipe, options, output, name, run_dir=None, command=None, callbacks=(), overwrite=True
):
    """Trains (or resumes) and evaluates `recipe`; writes a preset folder.

    Args:
        recipe: dict. The recipe (see `zoo/recipes/*.json`); its `"family"`
            picks the hooks (`FAMILIES`).
        options: `argparse.Namespace`. The family's options (see
            `parse_options`) and `evaluate_only`.
        output: str or path. The preset folder to write. Checked before
            training: its parent folders are created and must be
            writable; an existing folder is replaced only if it is a
            preset folder (or empty) and `overwrite`, else
            `FileExistsError`.
        name: str. The preset's name (metadata) and the run folder's prefix.
        run_dir: str, path or None. The run folder; `None` for the default
            under `<KERAS_HOME or ~/.keras>/keras_vae/runs/`.
        command: str or None. The command recorded in the metadata;
            `None` for this process' command line.
        callbacks: extra callbacks for every stage's `fit`.
        overwrite: bool. Replace an existing preset folder `output`.
            Defaults to `True`.

    Returns:
        The preset's metadata, as written.

    Example:

    >>> from keras_vae import runner
    >>> recipe = {"family": "image_vae", "seed": 0}
    >>> type(runner.family_of(recipe)).__name__
    'ImageVAE'
    >>> # runner.run(recipe, runner.parse_options(recipe, []), "out", "my_vae")
    """
    family = family_of(recipe)
    files.check_output(output, overwrite)
    key = family.run_key(recipe, options)
    run_dir = files.run_folder(name, [recipe, key], run_dir)
    print(f"Run folder: {run_dir}", flush=True)
    with files.locked(run_dir):
        files.check_identity(run_dir, recipe, key, options)
        return _run(family, recipe, options, output, name, run_dir, command, callbacks)


def set_random_seed(seed):
    """`keras.utils.set_random_seed(seed)`, without importing TensorFlow on the
    JAX and torch backends.

    Keras seeds `tf.random` whenever TensorFlow is installed, for `tf.data`
    shuffling, and so imports it (seconds, and its log lines) even where
    nothing uses it. The runner's families feed NumPy arrays and
    `PyDataset`s; a `tfds:` data set has imported TensorFlow while loading,
    before this runs. So TensorFlow is seeded when it is the backend or
    already imported, and left alone otherwise.
    """
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    from keras.src.utils import rng_utils  # Keras 3.15: `tf` is a lazy module there.

    lazy_tf = rng_utils.tf
    rng_utils.tf = _Unavailable()
    try:
        keras.utils.set_random_seed(seed)
    finally:
        rng_utils.tf = lazy_tf


class _Unavailable:
    """Stands in for Keras' lazy TensorFlow module: `available` is False."""

    available = False


def _run(family, recipe, options, output, name, run_dir, command, callbacks):
    commands = files.record_command(run_dir, command)
    wall_start = time.time()
    data = family.load_data(recipe, options)
    set_random_seed(recipe["seed"])
    model = family.build_model(recipe, data)
    training = {}
    for stage in family.stages(model, recipe, data, options):
        training[stage.name] = _train_stage(
            model, stage, run_dir, callbacks, getattr(options, "evaluate_only", False)
        )
    # A fresh model (no optimizer) with the kept weights of the last stage.
    trained = family.build_model(recipe, data)
    trained.load_weights(_weights_path(run_dir, stage))
    metrics = family.evaluate(trained, run_dir, recipe, data, options)
    last_logs = {k: v.get("last_epoch_logs") for k, v in training.items()}
    metadata = {
        "name": name,
        "description": recipe.get("description", ""),
        "training_command": commands[0],
        "commands": commands,
        "recipe": recipe,
        "train_seconds": round(sum(t["train_seconds"] for t in training.values()), 1),
        "last_epoch_logs": last_logs if len(last_logs) > 1 else last_logs[stage.name],
        "hardware": files.hardware(),
        "trained_on_backend": keras.backend.backend(),
        "metrics": metrics,
    }
    used = files.backends_used(run_dir)
    if len(used) > 1:  # continued with --switch-backend
        metadata["trained_on_backends"] = used
    metadata.update(family.metadata(trained, recipe, data, options, training, metrics))
    pictures = family.pictures(trained, run_dir, data, options)
    metadata["wall_seconds_this_invocation"] = round(time.time() - wall_start, 1)
    metadata = presets.save_to_preset(trained, output, metadata)
    for picture in pictures:
        files.copy_beside_preset(picture, output)
    if Path(output).resolve() == (presets.zoo_dir() / name).resolve():
        presets.register_builtin(name)
    print(json.dumps({"output": str(output), "metrics": metrics}, indent=2), flush=True)
    return metadata


def training_summary(record):
    """The metadata entries of a stage that keeps its best weights: epochs
    requested and completed, why it stopped early, the best epoch and the
    best value of its monitor (`best_<monitor>`)."""
    best = record["best"]
    monitor = next(k for k in best if k != "epoch")
    return {
        "epochs_requested": record["epochs_requested"],
        "epochs_completed": record["epochs_completed"],
        "stopped_early_by": record.get("stopped_early_by"),
        "best_epoch": best["epoch"],
        f"best_{monitor}": best[monitor],
    }
