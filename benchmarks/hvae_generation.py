"""Time of the PixelCNN head's pixel-by-pixel generation, per backend.

Usage:

    git worktree add /tmp/kv_before REV    # the library to compare with
    python benchmarks/hvae_generation.py --baseline /tmp/kv_before

`hvae_binarized_mnist` draws its 784 pixels one after another in
`reconstruct` (greedy, every group at its posterior mean), `sample` and
`decode`. For each round and backend, in fresh processes, this library
and then (with `--baseline DIR`) the library in `DIR` load the preset and
time `reconstruct` of `--num-images` random binarized MNIST test images
(`np.random.default_rng(0).choice`: the test file is sorted by digit) and
`sample(--num-samples, seed=0)`, each called twice (the first call
includes tracing and compiling), and write the outputs; the script prints
each time, the median over rounds, and the largest difference between the
two libraries' outputs on each backend. Run on an idle machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PRESET = "hvae_binarized_mnist"
BACKENDS = ("tensorflow", "jax", "torch")


def worker(args):
    import keras_vae as kv

    ((x, _),) = kv.datasets.load("binarized_mnist", splits=("test",))
    x = np.asarray(x)
    x = x[np.random.default_rng(0).choice(len(x), args.num_images, replace=False)]
    model = kv.from_preset(PRESET)
    times, outputs = {}, {}
    for verb, call in (
        ("reconstruct", lambda: model.reconstruct(x)),
        ("sample", lambda: model.sample(args.num_samples, seed=0)),
    ):
        for attempt in ("first", "second"):
            start = time.perf_counter()
            outputs[verb] = call()
            times[f"{verb}_{attempt}_s"] = round(time.perf_counter() - start, 2)
    np.savez(args.worker_out, **outputs)
    print("RESULT " + json.dumps({"library": os.path.dirname(kv.__file__), **times}), flush=True)


def run(backend, library, args, out):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["KERAS_VAE_DATA_DIR"] = args.data_dir
    if library is not None:
        env["PYTHONPATH"] = os.pathsep.join([library, env.get("PYTHONPATH", "")])
    command = [sys.executable, __file__, "--worker-out", out]
    command += ["--num-images", str(args.num_images), "--num-samples", str(args.num_samples)]
    # Not from the repository root, so that `--baseline`'s package is the one imported.
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{backend} ({library or 'this library'}) failed:\n{done.stderr[-3000:]}"
        )
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="a checkout of the library to compare with")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--num-images", type=int, default=512)
    parser.add_argument("--num-samples", type=int, default=256)
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("KERAS_VAE_DATA_DIR")
        or os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data")),
    )
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker_out:
        return worker(args)
    libraries = {"this": None}
    if args.baseline:
        libraries["baseline"] = os.path.abspath(args.baseline)
    folder = tempfile.mkdtemp()
    results = {}
    for round_ in range(args.rounds):
        for backend in args.backends:
            for name, library in libraries.items():
                out = os.path.join(folder, f"{backend}_{name}.npz")
                result = run(backend, library, args, out)
                results.setdefault((backend, name), []).append(result)
                print(round_ + 1, backend, name, json.dumps(result), flush=True)
    sizes = f"{args.num_images} images, {args.num_samples} samples"
    print(f"\nmedians over {args.rounds} rounds ({sizes}):")
    for (backend, name), rows in results.items():
        medians = {
            k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0] if k.endswith("_s")
        }
        print(backend, name, json.dumps(medians))
    if args.baseline:
        for backend in args.backends:
            ours, theirs = (np.load(os.path.join(folder, f"{backend}_{n}.npz")) for n in libraries)
            gaps = {k: float(np.abs(ours[k] - theirs[k]).max()) for k in ours.files}
            print(backend, "largest difference from the baseline:", json.dumps(gaps))


if __name__ == "__main__":
    main()
