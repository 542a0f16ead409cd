"""TensorFlow `fit` on NumPy arrays with and without tf.data's autotuning.

    KERAS_BACKEND=tensorflow python benchmarks/tf_data_autotune.py --rounds 10

One process trains issue 24's ARCH (or `--network default`, the default
conv VAE) on 12,800 binarized MNIST training images, batch 128, and
alternates epochs between the library's pipeline (autotuning off, the
default) and Keras' own (`KERAS_VAE_TF_DATA_AUTOTUNE=1`), swapping which
goes first each round. Per epoch it prints the images/s and the CPU-seconds
the process used per second (2.0 is both cores of this machine); at the
end each pipeline's median and how many epochs ran at under 1,300
images/s (one core's speed for ARCH here). Results in benchmarks/RESULTS.md.
"""

import argparse
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PIPELINES = {"library (autotune off)": None, "Keras (autotune on)": "1"}


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--network", default="arch", choices=("arch", "default"))
    parser.add_argument("--num-images", type=int, default=12800)
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    import keras_vae as kv

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("Run with KERAS_BACKEND=tensorflow.")
    sys.path.insert(0, os.path.join(HERE, "gpu"))
    import worker  # benchmarks/gpu/worker.py: ARCH and the default VAE

    ((x, _),) = kv.datasets.load("binarized_mnist", splits=("train",))
    x = np.array(x[: args.num_images], "float32").reshape(-1, 28, 28, 1)
    model = worker.build(args.network, kv, keras)
    model.fit(x[:1280], epochs=1, batch_size=128, verbose=0)  # compile, warm up
    rates = {name: [] for name in PIPELINES}
    for round_index in range(args.rounds):
        order = list(PIPELINES) if round_index % 2 == 0 else list(PIPELINES)[::-1]
        for name in order:
            if PIPELINES[name] is None:
                os.environ.pop("KERAS_VAE_TF_DATA_AUTOTUNE", None)
            else:
                os.environ["KERAS_VAE_TF_DATA_AUTOTUNE"] = PIPELINES[name]
            start, cpu = time.perf_counter(), cpu_seconds()
            model.fit(x, epochs=1, batch_size=128, verbose=0, shuffle=True)
            seconds = time.perf_counter() - start
            rates[name].append(len(x) / seconds)
            print(
                f"round {round_index + 1} {name}: {len(x) / seconds:6.0f} images/s, "
                f"{(cpu_seconds() - cpu) / seconds:.2f} CPU-s/s",
                flush=True,
            )
    for name, values in rates.items():
        slow = sum(value < 1300 for value in values)
        print(
            f"{name}: median {np.median(values):.0f} images/s, "
            f"{slow} of {len(values)} epochs under 1,300 images/s"
        )


if __name__ == "__main__":
    main()
