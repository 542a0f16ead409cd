import json

import keras
import numpy as np
import pytest

from zoo import common, train, train_sprites, train_text, train_vq_vae


def test_run_folder_is_keyed_by_recipe_and_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    first = common.run_folder("demo", [{"epochs": 1}])
    assert first.is_dir() and first.name.startswith("demo-")
    assert common.run_folder("demo", [{"epochs": 1}]) == first  # a rerun resumes
    assert common.run_folder("demo", [{"epochs": 2}]) != first
    chosen = tmp_path / "mine"
    assert common.run_folder("demo", [{"epochs": 1}], chosen) == chosen


def test_record_command_keeps_every_invocation(tmp_path):
    common.record_command(tmp_path, "zoo.train", ["vae", "--epochs", "1"])
    commands = common.record_command(tmp_path, "zoo.train", ["vae", "--evaluate-only"])
    assert commands == [
        "python -m zoo.train vae --epochs 1",
        "python -m zoo.train vae --evaluate-only",
    ]
    assert json.loads((tmp_path / "commands.json").read_text()) == commands


def test_keep_best_saves_only_improvements_and_survives_restarts(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    keep = common.KeepBest(tmp_path, monitor="val_objective")
    keep.set_model(model)
    keep.on_epoch_end(0, {"val_objective": 3.0})
    best = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in best])
    keep.on_epoch_end(1, {"val_objective": 4.0})  # worse: not saved
    assert keep.record == {"val_objective": 3.0, "epoch": 1}

    restarted = common.KeepBest(tmp_path, monitor="val_objective")
    assert restarted.record == {"val_objective": 3.0, "epoch": 1}
    model.load_weights(tmp_path / "best.weights.h5")
    for saved, kept in zip(model.get_weights(), best):
        np.testing.assert_array_equal(saved, kept)
    assert not list(tmp_path.glob("*.part*"))  # written atomically


def test_epoch_log_accumulates_time_across_restarts(tmp_path):
    log = common.EpochLog(tmp_path)
    log.previous = 10.0  # as if an earlier process had trained 10 s
    log.on_epoch_end(0, {"loss": 1.5})
    assert log.epochs_completed == 1 and log.history == [{"epoch": 1, "loss": 1.5}]
    assert common.EpochLog(tmp_path).previous >= 10.0


def test_backup_outlives_fit_and_survives_a_truncated_checkpoint(tmp_path):
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, epochs=2, callbacks=[common.backup_and_restore(tmp_path)], verbose=0)
    # Kept after fit returns: a run killed before its final weights are
    # written resumes at its last epoch instead of starting over.
    backup = tmp_path / "backup"
    assert common.backed_up_epochs(tmp_path) == 2
    # A process killed while writing the latest checkpoint leaves it
    # truncated: the next run resumes from the previous one (epoch 1).
    latest = backup / "latest.weights.h5"
    latest.write_bytes(latest.read_bytes()[:100])
    history = model.fit(x, y, epochs=3, callbacks=[common.backup_and_restore(tmp_path)], verbose=0)
    assert history.epoch == [1, 2]
    common.remove_backup(tmp_path)
    assert not backup.exists() and common.backed_up_epochs(tmp_path) is None


def test_copy_beside_preset_adds_the_file_and_leaves_no_part(tmp_path):
    picture = tmp_path / "samples.png"
    picture.write_bytes(b"\x89PNG data")
    folder = tmp_path / "preset"
    folder.mkdir()
    common.copy_beside_preset(picture, folder)
    assert (folder / "samples.png").read_bytes() == b"\x89PNG data"
    assert sorted(p.name for p in folder.iterdir()) == ["samples.png"]


@pytest.mark.parametrize(
    "module, argv",
    [
        (train, ["vae_binarized_mnist", "--eval-images", "0"]),
        (train_sprites, ["vae_sprites", "--steps", "0"]),
        (train_text, ["text_vae_ptb", "--train-sentences", "0"]),
        (train_vq_vae, ["vq_vae_mnist", "--test-images", "0"]),
        (train_vq_vae, ["vq_vae_mnist", "--epochs", "2.5"]),
    ],
)
def test_count_options_refuse_zero_instead_of_running_the_default(
    module, argv, monkeypatch, capsys
):
    # `--test-images 0` used to read as "not given", so the whole recipe
    # ran into the default output folder. If parsing lets it through, fail fast.
    def run_started(*args, **kwargs):
        raise AssertionError(f"{argv} started a run")

    monkeypatch.setattr(common, "run_folder", run_started)
    with pytest.raises(SystemExit):
        module.main(argv)
    assert f"must be an integer >= 1, got {argv[-1]!r}" in capsys.readouterr().err
