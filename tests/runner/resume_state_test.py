import json

import keras
import numpy as np

from keras_vae.runner import ResumeState, files


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
