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
    """A tiny preset folder written by `keras-vae train` on real MNIST (into
    a `runs/` folder that does not exist yet: `train` creates it)."""
    folder = tmp_path_factory.mktemp("cli") / "runs" / "tiny_vae"
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
    captured = capsys.readouterr()
    # stdout holds the JSON only; the progress lines went to stderr.
    result = json.loads(captured.out)
    assert "Evaluating on 50 examples" in captured.err
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
    # Existing files are not overwritten silently.
    before = out.read_bytes()
    argv = ["sample", str(trained), "--num-samples", "4", "--seed", "1", "--output", str(out)]
    assert main(argv) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == before
    (tmp_path / "other.npy").write_bytes(b"mine")
    other = argv[:-1] + [str(tmp_path / "other.png"), "--npy"]
    assert main(other) == 2 and (tmp_path / "other.npy").read_bytes() == b"mine"
    assert not (tmp_path / "other.png").exists()
    assert main(argv + ["--overwrite"]) == 0 and out.read_bytes() != before


def test_export(trained, tmp_path, capsys):
    code = main(["export", str(trained), "--output", str(tmp_path / "srv")])
    assert code == 0
    assert (tmp_path / "srv" / "1" / "saved_model.pb").exists()
    # Exporting the same version again is a user error, not a traceback,
    # and names the command's flag (not the library's `overwrite=True`).
    code = main(["export", str(trained), "--output", str(tmp_path / "srv")])
    assert code == 2
    err = capsys.readouterr().err
    assert "already exists; pass --overwrite" in err and "overwrite=True" not in err


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
    assert main(argv) == 2
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
    assert code == 2
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
    assert main(args + ["--npy"]) == 2
    assert "--npy and --columns are for image models" in capsys.readouterr().err
    # The sentences file is not replaced silently.
    assert main(args + ["--output", str(out)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(args + ["--output", str(out), "--overwrite"]) == 0


def test_evaluate_a_text_model_on_ptb(text_preset, capsys):
    args = ["evaluate", str(text_preset), "--max-examples", "16", "--num-samples", "4"]
    assert main(args + ["--json"]) == 0
    results = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert results["dataset"] == "ptb" and results["examples"] == 16
    assert results["num_sentences"] == 16 and results["importance_samples"] == 4
    assert results["perplexity"] > 1 and results["kl"] >= 0
    assert 0 <= results["active_units"] <= 2
    assert {"loss", "reconstruction_loss", "kl_loss", "mutual_information"} <= set(results)


def test_every_option_has_help_and_shows_its_default(capsys):
    import argparse

    from keras_vae.cli import build_parser

    verbs = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    for verb, parser in verbs.choices.items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = f"{verb} {action.dest}"
            assert action.help, f"{name} has no help"
            if action.option_strings and not action.required:
                shown = parser.formatter_class(verb)._get_help_string(action)
                assert "default" in shown, f"{name} does not say its default: {shown!r}"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS training epochs (default: 10)" in text
    assert "(default: 32,64)" in text


def test_presets_wraps_at_words_and_shows_the_headline_metric(capsys):
    from keras_vae import presets

    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in presets.list_presets():
        metadata = presets.load_metadata(name)
        # A header starts at column 0; descriptions are indented (and may
        # start with another preset's name).
        header = next(line for line in lines if line.split(" ", 1)[0] == name)
        description = " ".join(metadata["description"].split())
        shown = lines[lines.index(header) + 1].strip()
        if shown.endswith(" ..."):
            kept = shown[: -len(" ...")]
            assert description.startswith(kept) and description[len(kept)] == " ", shown
        else:
            assert shown == description
    header = next(line for line in lines if line.startswith("vae_binarized_mnist "))
    nll = presets.load_metadata("vae_binarized_mnist")["metrics"]["test_nll"]
    assert f"test_nll={nll:.4g}" in header
    assert main(["presets", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "dSprites-style" in " ".join(out.split())  # not broken at the hyphen


def test_train_overwrite_replaces_only_a_preset_folder_and_checks_first(tmp_path, capsys):
    work = tmp_path / "thesis"
    work.mkdir()
    (work / "chapter1.tex").write_text("years of work")
    argv = ["train", "--dataset", "mnist", "--run-dir", str(tmp_path / "run")]
    assert main(argv + ["--output", str(work), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is not a preset folder" in err and len(err.splitlines()) == 1
    assert (work / "chapter1.tex").read_text() == "years of work"
    assert main(argv + ["--output", str(work)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    # An output that cannot be written is refused before any training.
    assert main(argv + ["--output", str(work / "chapter1.tex" / "x")]) == 2
    assert "Cannot write the output" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sample_without_matplotlib_is_one_line_naming_the_extra(
    trained, tmp_path, monkeypatch, capsys
):
    import numpy as np

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    code = main(["sample", str(trained), "--num-samples", "4", "--output", str(tmp_path / "g.png")])
    err = capsys.readouterr().err
    assert code == 2 and not (tmp_path / "g.png").exists()
    assert len(err.splitlines()) == 1 and "pip install 'keras-vae[plot]'" in err
    # A .npy output needs no matplotlib.
    out = tmp_path / "g.npy"
    assert main(["sample", str(trained), "--num-samples", "4", "--output", str(out)]) == 0
    assert np.load(out).shape == (4, 28, 28, 1)


def test_a_tampered_preset_is_one_line_status_2(trained, tmp_path, capsys):
    copy = tmp_path / "tampered"
    shutil.copytree(trained, copy)
    weights = copy / "model.weights.h5"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert main(["evaluate", str(copy), "--max-examples", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-vae: error: ") and len(err.splitlines()) == 1


def test_unexpected_errors_are_one_line_too_unless_debugging(tmp_path, monkeypatch, capsys):
    from keras_vae import runner

    def broken(*args, **kwargs):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(runner, "run", broken)
    argv = ["train", "--dataset", "mnist", "--output", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == (
        "keras-vae: error: RuntimeError: something broke (unexpected; set "
        "KERAS_VAE_DEBUG=1 for the traceback)\n"
    )
    monkeypatch.setenv("KERAS_VAE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="broke"):
        main(argv)


def test_the_notebooks_extra_installs_the_documented_nbconvert():
    import tomllib

    root = Path(__file__).resolve().parents[1]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "jupyter nbconvert" in (root / "docs" / "serving.md").read_text()
    assert "nbconvert" in extras["notebooks"]


def test_a_preset_folder_left_aside_by_a_killed_writer_is_put_back(trained, tmp_path, capsys):
    # Killed between renaming the old folder aside and the new one in.
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()  # a pid that is no longer running
    folder = tmp_path / "my_vae"
    shutil.copytree(trained, tmp_path / f".my_vae.old-{process.pid}")
    args = ["evaluate", str(folder), "--max-examples", "4", "--num-samples", "0", "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_vae"]
