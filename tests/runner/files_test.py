import json

import keras
import numpy as np

from keras_vae.runner import EpochLog, KeepBest, ResumeState, files


def test_run_folder_is_keyed_by_recipe_and_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    first = files.run_folder("demo", [{"epochs": 1}])
    assert first.is_dir() and first.name.startswith("demo-")
    assert first.parent == tmp_path / "keras_vae" / "runs" == files.default_runs_dir()
    assert files.run_folder("demo", [{"epochs": 1}]) == first  # a rerun resumes
    assert files.run_folder("demo", [{"epochs": 2}]) != first
    chosen = tmp_path / "mine"
    assert files.run_folder("demo", [{"epochs": 1}], chosen) == chosen


def test_record_command_keeps_every_invocation(tmp_path):
    files.record_command(tmp_path, "python -m zoo.train vae --epochs 1")
    commands = files.record_command(tmp_path, "python -m zoo.train vae --evaluate-only")
    assert commands == [
        "python -m zoo.train vae --epochs 1",
        "python -m zoo.train vae --evaluate-only",
    ]
    assert json.loads((tmp_path / "commands.json").read_text()) == commands


def test_keep_best_saves_only_improvements_and_survives_restarts(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    keep = KeepBest(tmp_path, monitor="val_objective")
    keep.set_model(model)
    keep.on_epoch_end(0, {"val_objective": 3.0})
    best = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in best])
    keep.on_epoch_end(1, {"val_objective": 4.0})  # worse: not saved
    assert keep.record == {"val_objective": 3.0, "epoch": 1}

    restarted = KeepBest(tmp_path, monitor="val_objective")
    assert restarted.record == {"val_objective": 3.0, "epoch": 1}
    model.load_weights(tmp_path / "best.weights.h5")
    for saved, kept in zip(model.get_weights(), best):
        np.testing.assert_array_equal(saved, kept)
    assert not list(tmp_path.glob("*.part*"))  # written atomically


def test_epoch_log_accumulates_time_across_restarts(tmp_path):
    log = EpochLog(tmp_path)
    log.previous = 10.0  # as if an earlier process had trained 10 s
    log.on_epoch_end(0, {"loss": 1.5})
    assert log.epochs_completed == 1 and log.history == [{"epoch": 1, "loss": 1.5}]
    assert EpochLog(tmp_path).previous >= 10.0


def test_backup_outlives_fit_and_survives_a_truncated_checkpoint(tmp_path):
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=2, callbacks=[files.backup_and_restore(tmp_path)], verbose=0)
    # Kept after fit returns: a run killed before its final weights are
    # written resumes at its last epoch instead of starting over.
    backup = tmp_path / "backup"
    assert files.backed_up_epochs(tmp_path) == 2
    # A process killed while writing the latest checkpoint leaves it
    # truncated: the next run resumes from the previous one (epoch 1).
    latest = backup / "latest.weights.h5"
    latest.write_bytes(latest.read_bytes()[:100])
    history = model.fit(x, y, epochs=3, callbacks=[files.backup_and_restore(tmp_path)], verbose=0)
    assert history.epoch == [1, 2]
    files.remove_backup(tmp_path)
    assert not backup.exists() and files.backed_up_epochs(tmp_path) is None


class _Scripted(keras.callbacks.Callback):
    """Writes a scripted `val_objective` into the logs of each epoch."""

    VALUES = [5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9, 5.0, 5.1, 5.2]

    def on_epoch_end(self, epoch, logs=None):
        logs["val_objective"] = self.VALUES[epoch]


def _fit_with_schedule(run_dir, epochs):
    """Fits a tiny model for `epochs` (resuming from `run_dir`) with the zoo's
    early stopping and learning-rate decay; returns the epochs run and the
    final learning rate."""
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    schedule = {
        "lr_decay": keras.callbacks.ReduceLROnPlateau(
            "val_objective", factor=0.5, patience=2, mode="min"
        ),
        "early_stopping": keras.callbacks.EarlyStopping("val_objective", patience=3, mode="min"),
    }
    callbacks = [
        files.backup_and_restore(run_dir),
        _Scripted(),
        *schedule.values(),
        ResumeState(run_dir, schedule),
    ]
    history = model.fit(x, y, epochs=epochs, callbacks=callbacks, verbose=0)
    return history.epoch, float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def test_resume_state_makes_an_interrupted_run_stop_and_decay_as_an_uninterrupted_one(
    tmp_path,
):
    # Uninterrupted: best 4.0 at epoch 1, decay after epoch 3, stop after 4.
    epochs, learning_rate = _fit_with_schedule(tmp_path / "whole", 10)
    assert epochs == [0, 1, 2, 3, 4] and learning_rate == 0.5
    # Interrupted after 3 epochs: without the saved counters the resumed run
    # would take 4.6 as a new best and stop only after epoch 6.
    _fit_with_schedule(tmp_path / "split", 3)
    saved = json.loads((tmp_path / "split" / "callback_state.json").read_text())
    assert saved["3"]["early_stopping"] == {"wait": 1.0, "best": 4.0}
    epochs, learning_rate = _fit_with_schedule(tmp_path / "split", 10)
    assert epochs == [3, 4] and learning_rate == 0.5
    # Killed while writing epoch 3's checkpoint: the backup resumes from
    # epoch 2, and so do the counters (before the decay: learning rate 1).
    _fit_with_schedule(tmp_path / "killed", 3)
    latest = tmp_path / "killed" / "backup" / "latest.weights.h5"
    latest.write_bytes(latest.read_bytes()[:100])
    epochs, learning_rate = _fit_with_schedule(tmp_path / "killed", 10)
    assert epochs == [2, 3, 4] and learning_rate == 0.5


def _fit_with_dropout(run_dir, epochs):
    """Fits a tiny model with dropout for `epochs` (resuming from
    `run_dir`); returns its weights."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8), keras.layers.Dropout(0.5, seed=1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    callbacks = [files.backup_and_restore(run_dir), ResumeState(run_dir, {})]
    model.fit(
        x,
        np.ones((16, 8), "float32"),
        epochs=epochs,
        batch_size=4,
        shuffle=False,
        callbacks=callbacks,
        verbose=0,
    )
    return model.get_weights()


def test_resume_state_continues_the_random_streams_of_the_interrupted_run(tmp_path):
    whole = _fit_with_dropout(tmp_path / "whole", 4)
    _fit_with_dropout(tmp_path / "split", 2)
    resumed = _fit_with_dropout(tmp_path / "split", 4)
    # Without the saved seed states, epochs 3-4 would replay the dropout
    # masks of epochs 1-2 and end on other weights.
    for a, b in zip(resumed, whole):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_copy_beside_preset_adds_the_file_and_leaves_no_part(tmp_path):
    picture = tmp_path / "samples.png"
    picture.write_bytes(b"\x89PNG data")
    folder = tmp_path / "preset"
    folder.mkdir()
    files.copy_beside_preset(picture, folder)
    assert (folder / "samples.png").read_bytes() == b"\x89PNG data"
    assert sorted(p.name for p in folder.iterdir()) == ["samples.png"]
