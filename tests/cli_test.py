"""The `keras-vae` command, called in-process (and once as a subprocess)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from keras_vae.cli import main  # noqa: E402

VERBS = ("train", "evaluate", "sample", "export", "presets")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny preset folder written by `keras-vae train` on real MNIST."""
    folder = tmp_path_factory.mktemp("cli") / "tiny_vae"
    code = main(
        [
            "train",
            "--dataset",
            "mnist",
            "--architecture",
            "mlp",
            "--hidden-dims",
            "32",
            "--latent-dim",
            "4",
            "--epochs",
            "2",
            "--max-examples",
            "256",
            "--batch-size",
            "64",
            "--samples-every",
            "2",
            "--output",
            str(folder),
            "--run-dir",
            str(folder.parent / "run"),
        ]
    )
    assert code == 0
    return folder


@pytest.mark.parametrize("verb", VERBS)
def test_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    assert "usage: keras-vae " + verb in capsys.readouterr().out


def test_train_writes_preset(trained, capsys):
    names = sorted(os.listdir(trained))
    assert names == ["config.json", "metadata.json", "model.weights.h5"]
    metadata = json.loads((trained / "metadata.json").read_text())
    assert metadata["dataset"]["name"] == "mnist"
    assert metadata["training_command"].startswith(
        "keras-vae train --dataset mnist"
    )
    # The runner's record: the true negative ELBO beside the objective.
    assert {"val_loss", "val_neg_elbo"} <= set(metadata["last_epoch_logs"])
    assert metadata["recipe"]["family"] == "image_vae" and metadata["epochs_completed"] == 2
    assert metadata["metrics"]["test_elbo_images"] == 256
    grids = os.listdir(str(trained) + "_samples")
    assert grids == ["samples_epoch_0002.png"]


def test_evaluate(trained, capsys):
    code = main(
        [
            "evaluate",
            str(trained),
            "--max-examples",
            "50",
            "--num-samples",
            "5",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["dataset"] == "mnist" and result["examples"] == 50
    assert result["elbo"] < 0
    assert result["log_likelihood_k5"] >= result["elbo"] - 5.0


def test_sample_writes_png(trained, tmp_path, capsys):
    out = tmp_path / "grid.png"
    code = main(
        [
            "sample",
            str(trained),
            "--num-samples",
            "9",
            "--output",
            str(out),
            "--npy",
        ]
    )
    assert code == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "grid.npy").exists()
    assert "Wrote" in capsys.readouterr().out


def test_export(trained, tmp_path, capsys):
    code = main(["export", str(trained), "--output", str(tmp_path / "srv")])
    assert code == 0
    assert (tmp_path / "srv" / "1" / "saved_model.pb").exists()
    # Exporting the same version again is a user error, not a traceback.
    code = main(["export", str(trained), "--output", str(tmp_path / "srv")])
    assert code == 1
    assert "already exists" in capsys.readouterr().err


def test_presets_lists_builtins(capsys):
    from keras_vae import presets

    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in presets.list_presets():
        assert name in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "no_such_preset"], "Unknown preset 'no_such_preset'"),
        (["sample", "missing/model.keras"], "does not exist"),
        (["evaluate", "./no/folder"], "does not exist"),
        (
            ["train", "--output", "x", "--data-dir", "/no/such/dir"],
            "Data directory '/no/such/dir' does not exist",
        ),
        (
            ["train", "--dataset", "cifar", "--output", "{tmp}/o"],
            "Unknown data set 'cifar'",
        ),
        (["train", "--recipe", "{tmp}/none.json", "--output", "{tmp}/o"], "does not exist"),
        (["train", "--dataset", "ptb", "--output", "{tmp}/o"], "pass --recipe FILE"),
    ],
)
def test_user_errors_are_one_line(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-vae: error: ") and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_train_help_names_the_run_folder_and_what_is_logged(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "<KERAS_HOME or ~/.keras>/keras_vae/runs/<name>-<hash>" in text
    assert "val_neg_elbo is the true negative ELBO" in text and "--recipe FILE" in text


def test_train_ctrl_c_is_one_line_and_status_130(tmp_path, monkeypatch, capsys):
    from keras_vae import runner

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupted)
    argv = ["train", "--dataset", "mnist", "--output", str(tmp_path / "o")]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert err == "interrupted; run the same command again to resume\n"


def test_train_runs_a_recipe_file_with_the_zoo_runner(tmp_path, monkeypatch):
    from keras_vae import runner

    recipe = json.loads(
        (Path(__file__).resolve().parents[1] / "zoo" / "recipes" / "lstm_lm_ptb.json").read_text()
    )
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    seen = {}

    def run(recipe, options, output, name, **kwargs):
        seen.update(recipe=recipe, options=options, name=name, command=kwargs["command"])
        return {"train_seconds": 1.0, "best_epoch": 1, "best_val_loss": 100.0}

    monkeypatch.setattr(runner, "run", run)
    argv = ["train", "--recipe", str(path), "--output", str(tmp_path / "lm")]
    assert main(argv) == 0
    assert seen["recipe"] == recipe and seen["name"] == "lm"
    assert seen["options"].epochs is None and seen["options"].override == []
    assert seen["command"] == "keras-vae train --recipe " + str(path) + " --output " + str(
        tmp_path / "lm"
    )


def test_sample_bad_output_path(trained, capsys):
    code = main(["sample", str(trained), "--output", "/no/such/dir/g.png"])
    assert code == 1
    assert "Output directory" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_subprocess(trained, tmp_path):
    script = shutil.which("keras-vae")
    command = [script] if script else [sys.executable, "-m", "keras_vae.cli"]
    out = tmp_path / "s.png"
    result = subprocess.run(
        command
        + ["sample", str(trained), "--num-samples", "4", "--output", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.exists() and "Wrote" in result.stdout


def test_sample_every_builtin_preset(tmp_path):
    from keras_vae import presets

    for name in presets.list_presets():
        out = tmp_path / f"{name}.png"
        code = main(
            ["sample", name, "--num-samples", "4", "--output", str(out)]
        )
        assert code == 0 and out.exists(), name


@pytest.fixture(scope="module")
def text_preset(tmp_path_factory):
    """A tiny TextVAE preset with the PTB vocabulary, trained for one epoch
    on 64 PTB sentences."""
    import keras_vae as kv
    from keras_vae import presets

    ((train, _),) = kv.datasets.load("ptb", ("train",))
    vocabulary = kv.layers.Vocabulary.from_sentences(train, name="vocabulary")
    model = kv.TextVAE(vocabulary, latent_dim=2, embedding_dim=8, hidden_dim=8, seed=0)
    model.compile(optimizer="adam")
    model.fit(train[:64], epochs=1, batch_size=32, verbose=0)
    folder = tmp_path_factory.mktemp("cli_text") / "tiny_text_vae"
    presets.save_to_preset(model, folder, {"dataset": {"name": "ptb"}})
    return folder


def test_sample_prints_sentences_of_a_text_model(text_preset, tmp_path, capsys):
    out = tmp_path / "sentences.txt"
    args = ["sample", str(text_preset), "--num-samples", "3", "--seed", "1"]
    assert main(args + ["--output", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    written = out.read_text().splitlines()
    assert len(written) == 3 and printed[2:5] == written
    assert main(args + ["--npy"]) == 1
    assert "--npy and --columns are for image models" in capsys.readouterr().err


def test_evaluate_a_text_model_on_ptb(text_preset, capsys):
    args = ["evaluate", str(text_preset), "--max-examples", "16", "--num-samples", "4"]
    assert main(args + ["--json"]) == 0
    results = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert results["dataset"] == "ptb" and results["examples"] == 16
    assert results["num_sentences"] == 16 and results["importance_samples"] == 4
    assert results["perplexity"] > 1 and results["kl"] >= 0
    assert 0 <= results["active_units"] <= 2
    assert {"loss", "reconstruction_loss", "kl_loss", "mutual_information"} <= set(results)
