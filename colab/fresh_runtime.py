r"""Runs the notebooks top to bottom in a fresh virtual environment.

The nearest this project gets to "a fresh Colab runtime" without Colab: a
new venv without the system's site-packages, holding only what a Colab
runtime brings (a Jupyter kernel, plus `--preinstalled` packages such as
`jax`), in which each notebook's own first cell installs keras-vae with
pip. The install cell's GitHub URL is swapped for this checkout's committed
HEAD (`git+file://localhost/<repo>`), so uncommitted changes are not
tested. The notebooks share that one runtime, as on Colab: the first one
installs, the others find keras-vae installed. Notebooks run in full (not
smoke) mode unless `--smoke`; HOME points at an empty folder, so no Keras
config or cached preset is reused.
Data come from `KERAS_VAE_DATA_DIR` when set (machines without internet),
as the notebooks would otherwise download them.

Usage:

    python colab/fresh_runtime.py [NOTEBOOK ...] [--smoke]
        [--preinstalled jax ...] [--workdir DIR]

Needs network access to the package index; minutes per notebook (the
install dominates `quickstart`; `train_your_own` trains 10 epochs in full
mode). Prints one line per notebook and exits non-zero if any cell failed.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

COLAB = Path(__file__).resolve().parent
REPO = COLAB.parent
NOTEBOOKS = ("quickstart", "train_your_own", "export_tf_serving")
INSTALL_URL = "git+https://github.com/keras-vae/keras-vae"
RUNTIME = ("ipykernel", "nbclient", "nbformat")

# Runs inside the fresh venv: executes one notebook, writes it back.
_EXECUTE = r"""
import json, sys, time, nbformat
from nbclient import NotebookClient
source, target, published, url = sys.argv[1:5]
notebook = nbformat.read(source, as_version=4)
install = notebook.cells[1].source
assert published in install, "the install cell no longer names " + published
notebook.cells[1].source = install.replace(published, url)
start = time.time()
try:
    NotebookClient(notebook, timeout=3600, kernel_name="python3").execute()
finally:
    nbformat.write(notebook, target)
    errors = [o for c in notebook.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.output_type == "error"]
    print(json.dumps({"seconds": round(time.time() - start),
                      "errors": [e["ename"] + ": " + e["evalue"] for e in errors]}))
"""


def run(notebooks, smoke, preinstalled, workdir):
    workdir = Path(workdir)
    venv = workdir / "venv"
    python = venv / "bin" / "python"
    if venv.exists():
        raise SystemExit(f"{venv} exists: pass a new --workdir (a fresh runtime each time)")
    subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.check_call(pip + [*RUNTIME, *preinstalled])
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERAS", "PYTHON"))}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    if "KERAS_VAE_DATA_DIR" in os.environ:
        env["KERAS_VAE_DATA_DIR"] = os.environ["KERAS_VAE_DATA_DIR"]
    if smoke:
        env["KERAS_VAE_SMOKE"] = "1"
    url = f"git+file://localhost{REPO}"
    failed = False
    for name in notebooks:
        target = workdir / f"{name}.ipynb"
        done = subprocess.run(
            [python, "-c", _EXECUTE, COLAB / f"{name}.ipynb", target, INSTALL_URL, url],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
        )
        lines = done.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {"errors": [done.stderr[-2000:]]}
        failed |= done.returncode != 0 or bool(result["errors"])
        print(
            f"{name}: {result.get('seconds', '?')} s, errors: {result['errors']}, "
            f"executed notebook: {target}",
            flush=True,
        )
    return not failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help=f"any of {NOTEBOOKS} (default: all)")
    parser.add_argument("--smoke", action="store_true", help="few steps, little data")
    parser.add_argument(
        "--preinstalled",
        nargs="*",
        default=["jax"],
        help="packages a Colab runtime already has (default: jax)",
    )
    parser.add_argument("--workdir", default=None, help="venv and outputs (default: a temp dir)")
    args = parser.parse_args(argv)
    unknown = set(args.notebooks) - set(NOTEBOOKS)
    if unknown:
        parser.error(f"unknown notebooks {sorted(unknown)}; choose from {NOTEBOOKS}")
    workdir = args.workdir or tempfile.mkdtemp(prefix="keras_vae_fresh_")
    ok = run(args.notebooks or NOTEBOOKS, args.smoke, args.preinstalled, workdir)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
