"""`ResumeState`: what `BackupAndRestore` does not keep across restarts."""

from pathlib import Path

import keras
import numpy as np

from keras_vae.runner.files import read_json, write_json


class ResumeState(keras.callbacks.Callback):
    """Keeps what `BackupAndRestore` does not across restarts: the counters
    of stateful callbacks and the model's random states.

    `BackupAndRestore` restores the weights, the optimizer (learning rate
    included) and the epoch, but `EarlyStopping` and `ReduceLROnPlateau`
    start a resumed `fit` with a fresh patience and no best value (a run
    interrupted often would decay and stop later), and the weights file
    has no `SeedGenerator` state, so every restart replays the dropout
    masks and latent noise of the run's first epochs. This callback saves
    the callbacks' `wait`, `best` and `cooldown_counter`, and every seed
    generator state of the model, after each epoch in `<name>.json`
    (keyed by the number of completed epochs, the last three kept), and
    puts back those of the epoch `fit` resumes from. Put it after the
    callbacks it keeps.

    Args:
        run_dir: str or path. The run folder.
        callbacks: dict of name -> callback whose counters are kept.
        name: str. The state file's name, one per `fit` of a run (as the
            backup's). Defaults to `"callback_state"`.

    Example:

    >>> import tempfile
    >>> import keras
    >>> from keras_vae.runner import ResumeState
    >>> stop = keras.callbacks.EarlyStopping("val_neg_elbo", patience=3)
    >>> state = ResumeState(tempfile.mkdtemp(), {"early_stopping": stop})
    >>> # model.fit(..., callbacks=[backup, stop, state])
    """

    ATTRIBUTES = ("wait", "best", "cooldown_counter")
    RANDOM = "random_states"  # the key of the model's seed generator states

    def __init__(self, run_dir, callbacks, name="callback_state"):
        super().__init__()
        self.path = Path(run_dir) / f"{name}.json"
        self.callbacks = callbacks

    def _random_states(self):
        # Each `keras.random.SeedGenerator` keeps its state in a variable of
        # this name; `model.variables` lists them in a fixed order.
        return [v for v in self.model.variables if v.name == "seed_generator_state"]

    def _snapshot(self):
        state = {}
        for name, callback in self.callbacks.items():
            state[name] = {}
            for attribute in self.ATTRIBUTES:
                if hasattr(callback, attribute):
                    value = getattr(callback, attribute)
                    state[name][attribute] = None if value is None else float(value)
        state[self.RANDOM] = [keras.ops.convert_to_numpy(v).tolist() for v in self._random_states()]
        return state

    def _saved(self):
        return read_json(self.path, {})

    def _restore(self, state):
        for name, callback in self.callbacks.items():
            for attribute, value in state.get(name, {}).items():
                if attribute != "best" and value is not None:
                    value = int(value)
                setattr(callback, attribute, value)
        variables = self._random_states()
        values = state.get(self.RANDOM)
        if values is None or len(values) != len(variables):
            print("No random state saved for this model: its seeds restart.", flush=True)
            return
        for variable, value in zip(variables, values):
            variable.assign(np.asarray(value, dtype=variable.dtype))

    def on_train_begin(self, logs=None):
        self._first_epoch = True

    def on_epoch_begin(self, epoch, logs=None):
        # `epoch` of the first call is the number of epochs the backup
        # resumed from (the previous one when the latest was unreadable).
        if not self._first_epoch:
            return
        self._first_epoch = False
        if epoch == 0:
            return
        state = self._saved().get(str(epoch))
        if state is None:
            print(
                f"No state saved for epoch {epoch}: early stopping and learning-rate "
                "decay restart their patience, and the model its seeds.",
                flush=True,
            )
            return
        self._restore(state)

    def on_epoch_end(self, epoch, logs=None):
        saved = self._saved()
        saved[str(epoch + 1)] = self._snapshot()
        recent = sorted(saved, key=int)[-3:]
        write_json(self.path, {key: saved[key] for key in recent})
