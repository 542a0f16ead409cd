"""Process set-up for the `keras-vae` command, imported first by `keras_vae`.

The command quiets TensorFlow's C++ INFO and WARNING lines unless the user
set `TF_CPP_MIN_LOG_LEVEL`. TensorFlow reads the variable once, when it
loads; on the TensorFlow backend that is during `import keras`, before
`keras_vae.cli` runs, hence this module. (The lines TensorFlow prints
"before absl::InitializeLog() is called" ignore the variable; on JAX and
PyTorch the command does not load TensorFlow for them to appear.)
"""

import os
import sys


def is_command_line():
    """Whether this process is the `keras-vae` command (or `-m keras_vae.cli`)."""
    argv = list(getattr(sys, "orig_argv", None) or getattr(sys, "argv", None) or [])
    script = os.path.basename(sys.argv[0]) if getattr(sys, "argv", None) else ""
    module = any(a == "-m" and b == "keras_vae.cli" for a, b in zip(argv, argv[1:]))
    return script == "keras-vae" or module


if is_command_line():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
