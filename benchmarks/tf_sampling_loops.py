"""A/B of the TensorFlow sampling loops (`keras_vae.training.fori_loop`).

Usage: python benchmarks/tf_sampling_loops.py graph|eager

`graph` is the library as it is: on TensorFlow a model's sampling loop
(the `hvae_binarized_mnist` preset's PixelCNN head, 784 pixels in turn; the
`vq_vae_mnist` Transformer prior, 49 codes in turn), called eagerly, runs
as one traced `tf.function`. `eager` swaps in `keras.ops.fori_loop`
itself, which eager TensorFlow runs step by step in Python. Prints the
seconds of `keras-vae sample PRESET --num-samples 4` (the CLI, in this
process, loading the preset included) per preset. Run the two settings
alternated, in fresh processes, on an idle machine.
"""

import os
import sys
import tempfile
import time

os.environ["KERAS_BACKEND"] = "tensorflow"

import keras  # noqa: E402

from keras_vae.cli import main as cli  # noqa: E402
from keras_vae.models import hierarchical_vae, transformer_prior  # noqa: E402

PRESETS = ("hvae_binarized_mnist", "vq_vae_mnist")


def main(setting):
    if setting not in ("graph", "eager"):
        raise SystemExit("usage: python benchmarks/tf_sampling_loops.py graph|eager")
    if setting == "eager":
        hierarchical_vae.fori_loop = transformer_prior.fori_loop = keras.ops.fori_loop
    folder = tempfile.mkdtemp()
    for name in PRESETS:
        start = time.perf_counter()
        argv = ["sample", name, "--num-samples", "4", "--output", f"{folder}/{name}.png"]
        if cli(argv) != 0:
            raise SystemExit(f"sampling {name} failed")
        print(f"RESULT {setting} {name} {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:2] or [""])
