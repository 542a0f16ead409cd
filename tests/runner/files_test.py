import json

import keras
import numpy as np

from keras_vae.runner import files


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


def test_copy_beside_preset_adds_the_file_and_leaves_no_part(tmp_path):
    picture = tmp_path / "samples.png"
    picture.write_bytes(b"\x89PNG data")
    folder = tmp_path / "preset"
    folder.mkdir()
    files.copy_beside_preset(picture, folder)
    assert (folder / "samples.png").read_bytes() == b"\x89PNG data"
    assert sorted(p.name for p in folder.iterdir()) == ["samples.png"]
