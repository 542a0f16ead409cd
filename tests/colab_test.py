"""Executes the Colab notebooks headless (nbclient) in smoke mode.

To bound CI time each notebook runs in exactly one backend's pass of
`tests/run_backends.py` (round-robin below); the kernel gets that backend
through `KERAS_BACKEND` and `KERAS_VAE_SMOKE=1` (few steps, little data).
"""

import json
import time
from pathlib import Path

import keras
import nbformat
import pytest
from nbclient import NotebookClient

COLAB = Path(__file__).resolve().parents[1] / "colab"
NOTEBOOKS = ("quickstart", "train_your_own", "export_tf_serving")
FIGURES = {"quickstart": 3, "train_your_own": 4, "export_tf_serving": 1}
BACKEND_OF = {
    "quickstart": "tensorflow",
    "train_your_own": "jax",
    "export_tf_serving": "torch",
}
HERE = [n for n in NOTEBOOKS if BACKEND_OF[n] == keras.backend.backend()]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_has_badge_and_install_cell(name):
    notebook = nbformat.read(COLAB / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    first_markdown = notebook.cells[0].source
    assert "colab-badge.svg" in first_markdown
    assert f"blob/main/colab/{name}.ipynb" in first_markdown
    install = notebook.cells[1].source
    assert "pip" in install and 'find_spec("keras_vae") is None' in install
    assert all(
        not c.get("outputs") for c in notebook.cells if c.cell_type == "code"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", HERE)
def test_notebook_runs(name, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", keras.backend.backend())
    monkeypatch.setenv("KERAS_VAE_SMOKE", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.delenv("MPLBACKEND", raising=False)
    notebook = nbformat.read(COLAB / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.time()
    client.execute()
    seconds = time.time() - start
    print(f"{name} on {keras.backend.backend()}: {seconds:.1f} s")
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, json.dumps(errors)[:2000]
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert f"backend {keras.backend.backend()} smoke True" in printed
    images = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert images >= FIGURES[name], f"only {images} figures were displayed"
