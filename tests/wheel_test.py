"""The wheel a user installs: built from the checkout's tracked files, it
holds the library and the built-in presets' files and no top-level `zoo`
package, stays under 100 MB, and loads every built-in preset by name in a
fresh virtual environment, from a working directory whose `zoo.py`, `zoo/`
and `vae_binarized_mnist/` would shadow a careless lookup.

The wheel is the same whichever backend a run uses: TensorFlow's run builds
and checks it (`makes_backend_independent_checks` in tests/test_case.py);
every backend loads and samples every built-in preset in tests/cli_test.py."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import pytest

from keras_vae import presets
from tests.test_case import makes_backend_independent_checks

ROOT = Path(__file__).resolve().parents[1]
MAX_WHEEL_BYTES = 100 * 2**20

LOADER = """
import json, sys
import keras, numpy as np
import keras_vae as kv
report = {"file": kv.__file__, "backend": keras.backend.backend(), "presets": {}}
for name in kv.list_presets():
    model = kv.from_preset(name)
    report["presets"][name] = [type(model).__name__, int(model.count_params())]
print(json.dumps(report))
"""


def _tracked_copy(dest):
    """The checkout's tracked files (as a clean clone has them) in `dest`."""
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    _tracked_copy(source)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp / "dist"), str(source)],
        check=True, capture_output=True, timeout=600,
    )
    (path,) = (tmp / "dist").glob("keras_vae-*.whl")
    return path


def test_wheel_holds_the_library_and_presets_and_no_zoo(request):
    if not makes_backend_independent_checks():
        return
    wheel = request.getfixturevalue("wheel")
    assert wheel.stat().st_size < MAX_WHEEL_BYTES
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"keras_vae"}
    for preset, entry in presets.registry().items():
        for file in entry["files"]:
            assert f"keras_vae/preset_files/{preset}/{file}" in names
    assert "keras_vae/preset_files/registry.json" in names


def test_every_builtin_preset_loads_from_the_installed_wheel(request, tmp_path):
    if not makes_backend_independent_checks():
        return
    wheel = request.getfixturevalue("wheel")
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, timeout=600,
    )
    work = tmp_path / "work"
    (work / "zoo").mkdir(parents=True)
    (work / "zoo.py").write_text("raise RuntimeError('keras_vae imported zoo')\n")
    (work / "zoo" / "__init__.py").write_text("raise RuntimeError('keras_vae imported zoo')\n")
    (work / "vae_binarized_mnist").mkdir()
    (work / "vae_binarized_mnist" / "metadata.json").write_text("{}")
    env = {**os.environ, "KERAS_BACKEND": keras.backend.backend(), "PYTHONPATH": str(work)}
    result = subprocess.run(
        [str(python), "-c", LOADER], cwd=work, env=env, capture_output=True, text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == keras.backend.backend()
    assert Path(report["file"]).resolve().is_relative_to(venv.resolve())
    registry = presets.registry()
    assert sorted(report["presets"]) == sorted(registry)
    for name, (class_name, _) in report["presets"].items():
        assert class_name == registry[name]["class_name"]
