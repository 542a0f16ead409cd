"""What `import keras_vae` and the `keras-vae` command load (issue 23 part 9).

On JAX and PyTorch neither loads TensorFlow: it takes seconds to import and
prints C++ log lines. The library imports it only where it is needed
(`export`, `tf.data` pipelines, the TensorFlow trainer, the tfds bridge),
inside the functions. The command also sets `TF_CPP_MIN_LOG_LEVEL=2`
unless the user set it, before Keras loads (TensorFlow reads it once).

This needs a fresh interpreter (here Keras and the suite's seeding have
loaded TensorFlow already): one subprocess for the backend under test.
"""

import importlib
import json
import os
import subprocess
import sys

import keras

from keras_vae import _command_line

# Runs as the `keras-vae` console script does: argv[0] is the command.
_SCRIPT = """
import json, os, sys
sys.argv[0] = os.path.join(os.path.dirname(sys.executable), "keras-vae")
import keras_vae
after_import = sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")
from keras_vae import cli
try:
    status = cli.main(["--help"])
except SystemExit as exit:
    status = exit.code
after_help = sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")
# The runner seeds as keras.utils.set_random_seed does, minus TensorFlow.
import numpy as np
from keras.src.backend.common import global_state
from keras_vae.runner.run import set_random_seed
set_random_seed(3)
draw = float(np.random.random())
np.random.seed(3)
print(json.dumps({
    "status": status,
    "after_import": after_import,
    "after_help": after_help,
    "after_seed": sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow"),
    "numpy_seeded": draw == float(np.random.random()),
    "keras_seed": global_state.get_global_attribute("global_random_seed"),
    "log_level": os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
}))
"""


def test_import_help_and_the_runners_seed_leave_tensorflow_out():
    backend = keras.backend.backend()
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["KERAS_BACKEND"] = backend
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["status"] == 0
    assert "usage: keras-vae" in result.stdout
    # Set before `import keras` (which loads TensorFlow on its own backend).
    assert report["log_level"] == "2"
    if backend == "tensorflow":
        assert "tensorflow" in report["after_import"]
    else:
        assert report["after_import"] == [], report["after_import"][:5]
        assert report["after_help"] == [], report["after_help"][:5]
        assert report["after_seed"] == [], report["after_seed"][:5]
    assert report["numpy_seeded"] and report["keras_seed"] == 3


def test_command_line_detection(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/keras-vae", "train"])
    assert _command_line.is_command_line()
    monkeypatch.setattr(sys, "argv", ["/usr/bin/keras-vae-not", "train"])
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "keras_vae.cli", "--help"])
    assert _command_line.is_command_line()
    monkeypatch.setattr(sys, "argv", ["script.py"])
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "pytest", "keras_vae.cli"])
    assert not _command_line.is_command_line()


def test_command_line_keeps_the_users_log_level(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/keras-vae", "--help"])
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    importlib.reload(_command_line)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    importlib.reload(_command_line)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
