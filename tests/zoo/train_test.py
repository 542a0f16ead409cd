import json
import shlex

import keras
import numpy as np
import pytest

import keras_vae as kv
from keras_vae import presets, runner
from zoo import recipes, train, train_sprites, train_text, train_vq_vae

SHORT = ["--eval-samples", "10", "--eval-images", "100", "--train-images", "256"]


class _InterruptAfterFirstEpoch(keras.callbacks.Callback):
    """Presses Ctrl-C once the first epoch's checkpoint is written."""

    def on_epoch_end(self, epoch, logs=None):
        raise KeyboardInterrupt


@pytest.mark.slow
def test_short_run_resumes_after_ctrl_c_and_writes_a_loadable_preset(tmp_path, capsys):
    output = tmp_path / "preset"
    run_dir = tmp_path / "run"
    args = ["vae_binarized_mnist", "--epochs", "2", *SHORT]
    args += ["--output", str(output), "--run-dir", str(run_dir)]
    # Ctrl-C: one line, status 130, no traceback; the first epoch is kept.
    with pytest.raises(SystemExit) as stopped:
        train.main(args, callbacks=[_InterruptAfterFirstEpoch()])
    assert stopped.value.code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "interrupted; run the same command again to resume"
    assert "Traceback" not in err and not output.exists()
    # The same command again resumes and says so.
    metadata = train.main(args)
    out = capsys.readouterr().out
    assert f"resuming from epoch 2 of 2 (1 done; run folder {run_dir})" in out
    assert "train epoch 2/2 " in out and "(eta 0s)" in out

    model = kv.VAE.from_preset(output)
    assert model.latent_dim == recipes.load("vae_binarized_mnist")["model"]["latent_dim"]
    stored = json.loads((output / "metadata.json").read_text())
    assert stored == model.preset_metadata
    assert stored["training_command"].startswith(
        "python -m zoo.train vae_binarized_mnist --epochs 2"
    )
    assert len(stored["commands"]) == 2
    assert stored["epochs_completed"] == 2 and stored["best_epoch"] in (1, 2)
    assert "val_neg_elbo" in stored["last_epoch_logs"]
    metrics = stored["metrics"]
    assert metrics["test_nll_importance_samples"] == 10
    assert metrics["test_nll_images"] == 100
    assert np.isfinite(metrics["test_nll"])
    assert metrics["test_elbo_images"] == 100
    assert 0 <= metrics["active_units"] <= model.latent_dim
    np.testing.assert_allclose(
        model.encode(kv.datasets.load("binarized_mnist", ("test",))[0][0][:4])[0],
        stored["reference_encode"]["z_mean"],
        atol=1e-5,
    )
    assert metadata["sha256"] == stored["sha256"]

    # A further invocation on the same run folder does not train again; it
    # reuses the finished run and the cached evaluation. (In this process:
    # a new one would cost a minute of imports and compiling.)
    seconds = json.loads((run_dir / "done.json").read_text())["train"]["train_seconds"]
    train.main(args)
    assert "train: already done" in capsys.readouterr().out
    again = json.loads((output / "metadata.json").read_text())
    assert again["train_seconds"] == round(seconds, 1)
    assert again["metrics"]["test_nll"] == metrics["test_nll"]
    assert len(again["commands"]) == 3
    assert not (run_dir / "run.lock").exists()  # released by every run

    # The run folder refuses a run with other options (it would record
    # options it did not train with), before loading any data.
    with pytest.raises(SystemExit) as refused:
        train.main([*args[:2], "3", *args[3:]])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and len(err.splitlines()) == 1
    assert "--epochs 2 -> 3" in err and "another --run-dir" in err
    assert json.loads((output / "metadata.json").read_text()) == again


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        train.main(["no_such_preset"])
    with pytest.raises(SystemExit):
        train.main(["vae_binarized_mnist", "--epochs", "0"])


def test_help_names_the_run_folder_and_the_recipes_options(capsys):
    with pytest.raises(SystemExit):
        train.main(["vq_vae_mnist", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "<KERAS_HOME or ~/.keras>/keras_vae/runs/<name>-<hash>" in text
    assert "--prior-epochs" in text and "resume" in text


def test_every_recipe_has_a_family_and_a_seed():
    # Every preset has its recipe; a recipe may come before its preset is
    # trained (a long run spans sessions before its preset exists).
    assert set(presets.list_presets()) <= set(recipes.names())
    for name in recipes.names():
        recipe = recipes.load(name)
        assert recipe["family"] in runner.FAMILIES and "seed" in recipe, name


@pytest.mark.parametrize(
    "name", ["vae_binarized_mnist", "vq_vae_mnist", "vae_sprites", "hvae_binarized_mnist"]
)
def test_shipped_presets_were_made_by_their_recipe(name):
    # The text and sprites preset tests check the other recipes. Presets
    # made after the "family" key record it; older ones do not.
    metadata = presets.load_metadata(name)
    recorded = recipes.as_trained(metadata["recipe"])
    assert recorded == recipes.as_trained(recipes.load(name))


@pytest.mark.parametrize(
    "main, argv",
    [
        (train.main, ["vae_binarized_mnist", "--eval-images", "0"]),
        (train_sprites.main, ["vae_sprites", "--steps", "0"]),
        (train_text.main, ["text_vae_ptb", "--train-sentences", "0"]),
        (train_vq_vae.main, ["vq_vae_mnist", "--test-images", "0"]),
        (train.main, ["vq_vae_mnist", "--epochs", "2.5"]),
    ],
)
def test_count_options_refuse_zero_instead_of_running_the_default(main, argv, monkeypatch, capsys):
    # `--test-images 0` used to read as "not given", so the whole recipe
    # ran into the default output folder. If parsing lets it through, fail fast.
    def run_started(*args, **kwargs):
        raise AssertionError(f"{argv} started a run")

    monkeypatch.setattr(runner, "run", run_started)
    with pytest.raises(SystemExit):
        main(argv)
    assert f"must be an integer >= 1, got {argv[-1]!r}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "main, argv",
    [
        (train.main, ["vae_binarized_mnist", "--train-images", "100"]),
        (train.main, ["vae_binarized_mnist", "--eval-samples", "4"]),
        (train_sprites.main, ["vae_sprites", "--eval-fraction", "0.1"]),
        (train_text.main, ["lstm_lm_ptb", "--override", "tie_embeddings=true"]),
        (train.main, ["text_vae_ptb", "--decoder-init", "/tmp/lm"]),
        (train_vq_vae.main, ["vq_vae_mnist", "--test-images", "100"]),
    ],
)
def test_changed_runs_must_not_replace_the_shipped_preset(main, argv, monkeypatch, capsys):
    # Without --output these runs would write the shipped preset's folder.
    def run_started(*args, **kwargs):
        raise AssertionError(f"{argv} started a run")

    monkeypatch.setattr(runner, "run", run_started)
    with pytest.raises(SystemExit):
        main(argv)
    err = " ".join(capsys.readouterr().err.split())
    assert f"{argv[1]} changes what the shipped recipe" in err
    shipped = presets.zoo_dir() / argv[0]
    assert f"pass --output DIR (the default, {shipped}, holds the shipped preset)" in err


def test_output_folder_defaults_to_the_built_in_preset_for_the_recipe_as_is(tmp_path):
    def error(message):
        raise AssertionError(message)

    default = runner.output_folder(error, "demo", None, {"--train-images": False})
    assert default == presets.zoo_dir() / "demo"
    assert runner.output_folder(error, "demo", str(tmp_path), {"--train-images": True}) == tmp_path


@pytest.mark.parametrize("name", presets.list_presets())
def test_the_shipped_presets_recorded_commands_still_run(name, monkeypatch):
    # `python -m zoo.train_text text_vae_ptb --override ... --decoder-init ...`,
    # `python -m zoo.train_sprites vae_sprites --figure ...`: each command
    # recorded in a shipped preset reaches the runner with its recipe.
    started = {}

    def run(recipe, options, output, preset, **kwargs):
        started.update(recipe=recipe, preset=preset, command=kwargs["command"])

    monkeypatch.setattr(runner, "run", run)
    command = presets.load_metadata(name)["training_command"]
    python, dash_m, module, *argv = shlex.split(command)
    assert (python, dash_m, argv[0]) == ("python", "-m", name)
    train.main_as(f"python -m {module}")(argv)
    assert started["preset"] == name and started["command"] == command
    assert started["recipe"]["family"] == recipes.load(name)["family"]
