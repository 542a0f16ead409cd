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


def _dead_pid():
    """The id of a process that has exited."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_live_run_holds_its_folder_and_a_dead_ones_lock_is_taken_over(tmp_path):
    import os

    import pytest

    with files.locked(tmp_path):
        assert (tmp_path / "run.lock").read_text().split() == [str(os.getpid())]
        # A second run of the same recipe (this process, alive) is refused.
        with pytest.raises(files.RunFolderError, match=f"in use by process {os.getpid()}"):
            with files.locked(tmp_path):
                pass
    assert not (tmp_path / "run.lock").exists()
    # A lock left by a killed run is stale: taken over, then released.
    (tmp_path / "run.lock").write_text(f"{_dead_pid()}\n")
    with files.locked(tmp_path):
        assert (tmp_path / "run.lock").read_text().split() == [str(os.getpid())]
    assert not (tmp_path / "run.lock").exists()


def test_a_run_folder_refuses_a_run_with_other_options(tmp_path):
    import argparse

    import pytest

    recipe = {"family": "image_vae", "model": {"latent_dim": 2}, "epochs": 3}
    options = argparse.Namespace(epochs=None, train_images=256, evaluate_only=False)
    files.check_identity(tmp_path, recipe, [3, 256], options)
    # The same run again (e.g. with --evaluate-only) resumes.
    files.check_identity(tmp_path, recipe, [3, 256], argparse.Namespace(**{
        **vars(options), "evaluate_only": True}))
    other = {**recipe, "model": {"latent_dim": 4}}
    with pytest.raises(files.RunFolderError, match="model.latent_dim 2 -> 4") as error:
        files.check_identity(tmp_path, other, [3, 256], options)
    assert "another --run-dir" in str(error.value) and "\n" not in str(error.value)
    changed = argparse.Namespace(epochs=None, train_images=512, evaluate_only=False)
    with pytest.raises(files.RunFolderError, match="--train-images 256 -> 512"):
        files.check_identity(tmp_path, recipe, [3, 512], changed)
    # What the folder records is still the first run's.
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["recipe"] == recipe and saved["options"]["train_images"] == 256


def test_a_run_folder_continues_on_another_backend_only_when_asked(tmp_path, capsys):
    import argparse

    import keras
    import pytest

    recipe = {"family": "image_vae", "epochs": 3}
    options = argparse.Namespace(epochs=None, evaluate_only=False, switch_backend=False)
    files.check_identity(tmp_path, recipe, [3], options)
    here = keras.backend.backend()
    assert [b["backend"] for b in files.backends_used(tmp_path)] == [here]
    assert "logical CPUs" in files.backends_used(tmp_path)[0]["hardware"]
    # As if the run had been started on another backend.
    saved = json.loads((tmp_path / "run.json").read_text())
    saved.update(backend="other", backends=[{"backend": "other", "hardware": "elsewhere"}])
    (tmp_path / "run.json").write_text(json.dumps(saved))
    refused = rf"backend 'other' -> '{here}': pass --switch-backend"
    with pytest.raises(files.RunFolderError, match=refused):
        files.check_identity(tmp_path, recipe, [3], options)
    switched = argparse.Namespace(**{**vars(options), "switch_backend": True})
    files.check_identity(tmp_path, recipe, [3], switched)
    assert f"trained on 'other'; continuing on '{here}'" in capsys.readouterr().out
    used = files.backends_used(tmp_path)
    assert [b["backend"] for b in used] == ["other", here] and used[0]["hardware"] == "elsewhere"
    # From then on it is a run on this backend: resumed without the option.
    files.check_identity(tmp_path, recipe, [3], options)
    assert len(files.backends_used(tmp_path)) == 2
    # Another recipe is still refused, with or without the option.
    with pytest.raises(files.RunFolderError, match="epochs 3 -> 4"):
        files.check_identity(tmp_path, {**recipe, "epochs": 4}, [3], switched)


def _backed_up_model(run_dir, epochs):
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(
        x, y, epochs=epochs, callbacks=[files.backup_and_restore(run_dir)], verbose=0
    )
    return history


def test_an_empty_or_torn_checkpoint_metadata_falls_back_to_the_backup(tmp_path):
    _backed_up_model(tmp_path, 2)
    metadata = tmp_path / "backup" / "training_metadata.json"
    for previous, torn in enumerate(("", '{"epoch": '), start=1):
        # Killed between writing the weights and the metadata (Keras opens
        # the metadata file with "w": empty, or partly written).
        metadata.write_text(torn)
        assert files.backed_up_epochs(tmp_path) == previous  # the intact .bkp
        assert json.loads(metadata.read_text())["epoch"] == previous
        assert _backed_up_model(tmp_path, previous + 2).epoch == [previous, previous + 1]
    # With no intact previous checkpoint the run starts over.
    for name in ("training_metadata.json", "training_metadata.json.bkp"):
        (tmp_path / "backup" / name).write_text("")
    assert files.backed_up_epochs(tmp_path) is None
    assert _backed_up_model(tmp_path, 1).epoch == [0]


def test_check_output_only_replaces_preset_folders_and_creates_parents(tmp_path):
    import pytest

    from keras_vae import presets

    files.check_output(tmp_path / "runs" / "new" / "x")  # parents created
    assert (tmp_path / "runs" / "new").is_dir()
    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="not a preset folder"):
        files.check_output(home)
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        files.check_output(home, overwrite=False)
    preset = tmp_path / "preset"
    preset.mkdir()
    for name in presets.REGISTERED_FILES + ("samples.png",):
        (preset / name).write_text("{}")
    files.check_output(preset)  # a preset folder (with pictures) may be replaced
    (tmp_path / "empty").mkdir()
    files.check_output(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="Cannot write"):
        files.check_output(tmp_path / "file" / "x")


def test_a_kill_between_the_preset_writers_renames_never_loses_the_output(tmp_path):
    from keras_vae import presets

    dead = _dead_pid()
    output = tmp_path / "preset"
    # Killed after renaming the old folder aside, before renaming the new
    # one in: the old folder is put back; the temporary folder deleted.
    aside = tmp_path / f".preset.old-{dead}"
    aside.mkdir()
    (aside / "metadata.json").write_text("{}")
    (tmp_path / f".preset.tmp-{dead}-abc").mkdir()
    presets.recover_preset_dir(output)
    assert (output / "metadata.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset"]
    # Killed after the new folder is in: the aside old one is deleted.
    aside.mkdir()
    presets.recover_preset_dir(output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preset"]
