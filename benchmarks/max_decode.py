"""`log_likelihood`'s `max_decode` per backend, for a binarized MNIST preset.

Usage:

    python benchmarks/max_decode.py [--values 256 1024 8192] [--num-images 64] [--rounds 3]
        [--preset vae_binarized_mnist] [--num-samples 1000]

Each backend runs in its own subprocess (KERAS_BACKEND is fixed at
import) and times `model.log_likelihood(x, num_samples=k, max_decode=m)`
of the preset (a built-in name or a preset folder: `VAE`'s defaults are
8192 on torch and 256 elsewhere, `HierarchicalVAE`'s 4096 on TensorFlow
and 256 elsewhere) on `--num-images` random binarized MNIST test images
(`np.random.default_rng(0).choice`: the file is sorted by digit), every
value once per round, the order reversed every other round, after one
untimed call per value (JAX and TensorFlow compile per shape). Prints a
Markdown table of the median time projected to the 10,000 test images
at k = `--num-samples` (minutes) and its ratio to the first value's, per
backend, with the load average: on a loaded machine compare the ratios.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(values, num_images, rounds, preset, num_samples):
    import numpy as np

    import keras_vae as kv

    (test,) = kv.datasets.load("binarized_mnist", splits=("test",))
    x = np.asarray(test[0], "float32").reshape(-1, 28, 28, 1)
    x = x[np.random.default_rng(0).choice(len(x), num_images, replace=False)]
    model = kv.from_preset(preset)
    for value in values:
        model.log_likelihood(x, num_samples=num_samples, max_decode=value)
    times = {value: [] for value in values}
    for round_ in range(rounds):
        for value in values if round_ % 2 == 0 else values[::-1]:
            start = time.perf_counter()
            model.log_likelihood(x, num_samples=num_samples, max_decode=value)
            times[value].append(time.perf_counter() - start)
    return {
        str(value): statistics.median(seconds) / num_images * 1e4 / 60
        for value, seconds in times.items()
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, nargs="+", default=[256, 1024, 8192])
    parser.add_argument("--num-images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--preset", default="vae_binarized_mnist", help="name or folder")
    parser.add_argument("--num-samples", type=int, default=1000, help="importance samples k")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        measured = measure(args.values, args.num_images, args.rounds, args.preset, args.num_samples)
        print(json.dumps(measured))
        return
    rows = []
    for backend in args.backends:
        command = [sys.executable, os.path.abspath(__file__), "--worker", backend]
        command += ["--values", *map(str, args.values), "--num-images", str(args.num_images)]
        command += ["--rounds", str(args.rounds), "--preset", args.preset]
        command += ["--num-samples", str(args.num_samples)]
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.path.dirname(HERE)}
        output = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        minutes = json.loads(output.stdout.strip().splitlines()[-1])
        rows.append((backend, minutes, os.getloadavg()[0]))
        print(f"{backend}: {minutes}", file=sys.stderr, flush=True)
    first = str(args.values[0])
    print(
        f"\n{args.preset}: {args.num_images} images, k={args.num_samples}, "
        f"median of {args.rounds} rounds, minutes per 10k"
    )
    print("| backend | " + " | ".join(f"max_decode {v}" for v in args.values) + " | load |")
    print("|---|" + "---|" * (len(args.values) + 1))
    for backend, minutes, load in rows:
        cells = [
            f"{minutes[str(v)]:.1f} ({minutes[str(v)] / minutes[first]:.2f})" for v in args.values
        ]
        print(f"| {backend} | " + " | ".join(cells) + f" | {load:.1f} |")


if __name__ == "__main__":
    main()
