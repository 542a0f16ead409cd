"""Training with and without keras-vae's `malloc` settings (keras_vae/training/malloc_tuning.py).

Usage:

    python benchmarks/malloc_tuning.py --rounds 3

One child process per backend and setting (`KERAS_VAE_MALLOC_TUNING=0`,
then unset: the library's default), alternated within each round: each
trains issue 24's ARCH network (`benchmarks/gpu/worker.py`) on
`--num-images` binarized MNIST training images, batch 128, one warm-up
epoch then one timed epoch, and reports its images/s, the minor page
faults per training step and the share of its CPU time spent in the
kernel (both from `getrusage` over the timed epoch), and its peak RSS.
Prints a markdown table of the medians over rounds.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = 128
BACKENDS = ("jax", "torch", "tensorflow")


def worker(args):
    import numpy as np

    sys.path.insert(0, os.path.join(HERE, "gpu"))
    import keras
    import worker as networks  # benchmarks/gpu/worker.py

    import keras_vae as kv
    from keras_vae.training import MALLOC_TUNED

    ((x, _),) = kv.datasets.load("binarized_mnist", splits=("train",))
    x = np.array(x[: args.num_images], dtype="float32", copy=True).reshape(-1, 28, 28, 1)
    model = networks.build("arch", kv, keras)
    model.fit(x, epochs=1, batch_size=BATCH, verbose=0)  # warm-up: compiles
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    model.fit(x, epochs=1, batch_size=BATCH, verbose=0)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    system = after.ru_stime - before.ru_stime
    user = after.ru_utime - before.ru_utime
    record = {
        "tuned": MALLOC_TUNED,
        "images_per_s": len(x) / seconds,
        "faults_per_step": (after.ru_minflt - before.ru_minflt) / (len(x) // BATCH),
        "system_share": system / (system + user),
        "cpu_per_wall": (system + user) / seconds,
        "peak_rss_mib": after.ru_maxrss / 1024,
    }
    print("RECORD " + json.dumps(record), flush=True)


def run_child(backend, tuned, args):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KERAS_VAE_MALLOC_TUNING", None)
    if not tuned:
        env["KERAS_VAE_MALLOC_TUNING"] = "0"
    command = [sys.executable, __file__, "--worker", "--num-images", str(args.num_images)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{backend} (tuned={tuned}) failed:\n{result.stderr[-3000:]}")
    line = [x for x in result.stdout.splitlines() if x.startswith("RECORD ")][-1]
    return json.loads(line[len("RECORD ") :])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-images", type=int, default=12_800)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--out", help="write every round's records as JSON here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    load = os.getloadavg()
    records = {(b, t): [] for b in args.backends for t in (False, True)}
    for round_index in range(args.rounds):
        for backend in args.backends:
            for tuned in (False, True):
                record = run_child(backend, tuned, args)
                records[backend, tuned].append(record)
                print(f"round {round_index + 1} {backend} tuned={tuned}: {record}", flush=True)
    lines = [
        f"ARCH, {args.num_images:,} images per epoch, batch {BATCH}, median of {args.rounds} "
        f"rounds; load average at the start {load[0]:.2f}.",
        "",
        "| backend | malloc settings | images/s | page faults per step | kernel share of CPU time "
        "| CPU-seconds per second | peak RSS (MiB) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (backend, tuned), rows in records.items():

        def median(key, rows=rows):
            return statistics.median(r[key] for r in rows)

        applied = {r["tuned"] for r in rows}
        setting = "keras-vae's" if tuned else "glibc's defaults"
        if tuned and applied != {True}:
            setting += " (not applied here)"
        lines.append(
            f"| {backend} | {setting} | {median('images_per_s'):,.0f} | "
            f"{median('faults_per_step'):,.0f} | {median('system_share'):.2f} | "
            f"{median('cpu_per_wall'):.2f} | {median('peak_rss_mib'):,.0f} |"
        )
    print("\n".join(lines))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"load_average_start": load, "records": [
                {"backend": b, "tuned": t, "rounds": rows} for (b, t), rows in records.items()
            ]}, f, indent=1)


if __name__ == "__main__":
    main()
