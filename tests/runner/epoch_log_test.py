import keras
import numpy as np

from keras_vae.runner import EpochLog, files
from keras_vae.runner import epoch_log as epoch_log_module


def test_each_line_has_the_epochs_own_seconds_and_the_time_left(tmp_path, monkeypatch, capsys):
    now = [1000.0]
    monkeypatch.setattr(epoch_log_module.time, "time", lambda: now[0])
    log = EpochLog(tmp_path, stage="train")
    log.set_params({"epochs": 4})
    log.on_train_begin()
    for epoch, seconds in enumerate((10, 30)):
        log.on_epoch_begin(epoch)
        now[0] += seconds
        log.on_epoch_end(epoch, {"val_neg_elbo": 90.0, "val_loss": 85.0})
    first, second = capsys.readouterr().out.splitlines()
    # The epoch's own seconds, not the run's cumulative time; the time left
    # is the mean epoch (20 s) times the epochs left.
    assert first == "train epoch 1/4 10s (eta 30s) val_loss=85 val_neg_elbo=90"
    assert second == "train epoch 2/4 30s (eta 40s) val_loss=85 val_neg_elbo=90"
    assert log.seconds() == 40.0


def test_a_resumed_fit_says_where_it_resumes_and_where_the_run_lives(tmp_path, capsys):
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")

    def fit(epochs):
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        callbacks = [files.backup_and_restore(tmp_path), EpochLog(tmp_path)]
        model.fit(x, y, epochs=epochs, callbacks=callbacks, verbose=0)

    fit(2)
    assert "resuming" not in capsys.readouterr().out
    fit(5)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"resuming from epoch 3 of 5 (2 done; run folder {tmp_path})"
    assert out[1].startswith("train epoch 3/5 ")


def test_batch_lines_when_asked(tmp_path, capsys):
    log = EpochLog(tmp_path, stage="prior", every_batches=2)
    log.set_params({"epochs": 1, "steps": 4})
    log.on_train_begin()
    log.on_epoch_begin(0)
    for batch in range(4):
        log.on_train_batch_end(batch, {"loss": 1.5})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [["prior", "batch", "2/4"]] + [
        ["prior", "batch", "4/4"]
    ]
    assert lines[0].endswith("loss=1.5000")


def test_epoch_log_accumulates_time_across_restarts(tmp_path):
    log = EpochLog(tmp_path)
    log.previous = 10.0  # as if an earlier process had trained 10 s
    log.on_epoch_end(0, {"loss": 1.5})
    assert log.epochs_completed == 1 and log.history == [{"epoch": 1, "loss": 1.5}]
    assert EpochLog(tmp_path).previous >= 10.0
