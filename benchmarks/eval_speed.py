"""Importance-sampled evaluation speed per backend (issue 24 part 4).

One command:

    python benchmarks/eval_speed.py                  # 500 images, k = 1000
    python benchmarks/eval_speed.py --num-images 50  # a quick look

Each backend runs in its own subprocess (KERAS_BACKEND is fixed at import):
it measures the CPU's matmul peak (2048 x 2048, float32 and bfloat16, best
of 5), then `vae_binarized_mnist.log_likelihood(x, num_samples=k)` on
`--num-images` binarized MNIST test images drawn with
`np.random.default_rng(0).choice` (the test file is sorted by digit: never a
prefix). The first call includes the compilation of the scorer (one
trace per batch shape); `--calls N` times N calls on the same images and
projects from the last (the steady rate), the table shows the first and
the last. FLOPs are counted from the
networks' Dense and Conv2D layers (2 per multiply-add): the decoder once per
importance sample, the encoder once per image. The projected time for the
10,000 test images scales the measured time linearly.

`--bf16-backends` (default: tensorflow) adds a row per backend with
`compute_dtype="bfloat16"` on the same images and seed (same noise), and the
mean change of the estimate against that backend's float32 row, in nats.

Prints a Markdown table; `--out` writes the records as JSON.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

BACKENDS = ("tensorflow", "jax", "torch")
TEST_IMAGES = 10_000


def layer_flops(model):
    """FLOPs (2 per multiply-add) of one example through the Dense and
    Conv2D layers of `model`, nested models included."""
    import keras

    total = 0
    for layer in model.layers:
        if hasattr(layer, "layers"):
            total += layer_flops(layer)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2D):
            out_h, out_w = layer.output.shape[1:3]
            total += 2 * out_h * out_w * int(np.prod(layer.kernel.shape))
    return total


def matmul_peak(backend, dtype, size=2048, repeats=5):
    """Best-of-`repeats` GFLOP/s of a `size` x `size` matmul."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype("float32")
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        x = jnp.asarray(a, dtype=dtype)
        fn = jax.jit(lambda v: v @ v)

        def run():
            fn(x).block_until_ready()

    elif backend == "tensorflow":
        import tensorflow as tf

        x = tf.cast(tf.constant(a), dtype)
        fn = tf.function(lambda v: tf.matmul(v, v))

        def run():
            fn(x).numpy()

    else:
        import torch

        x = torch.from_numpy(a).to(getattr(torch, dtype))

        def run():
            torch.mm(x, x)

    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def worker(args):
    import keras

    import keras_vae as kv
    from keras_vae.datasets.binarized_mnist import load_binarized_mnist

    backend = keras.backend.backend()
    record = {
        "backend": backend,
        "peak_float32": matmul_peak(backend, "float32"),
        "peak_bfloat16": matmul_peak(backend, "bfloat16"),
    }
    model = kv.from_preset(args.preset)
    x, _ = load_binarized_mnist("test")
    x = x[np.random.default_rng(0).choice(len(x), args.num_images, replace=False)]
    flops = args.num_images * (
        args.num_samples * layer_flops(model.decoder) + layer_flops(model.encoder)
    )
    dtypes = ["float32"] + (["bfloat16"] if args.bf16 else [])
    results = {}
    for dtype in dtypes:
        times = []
        for _ in range(args.calls):
            start = time.perf_counter()
            ll = model.log_likelihood(x, num_samples=args.num_samples, compute_dtype=dtype)
            times.append(time.perf_counter() - start)
        seconds = times[-1]
        results[dtype] = ll
        record[dtype] = {
            "first_call_seconds": times[0],
            "seconds": seconds,
            "projected_minutes": seconds * TEST_IMAGES / args.num_images / 60,
            "gflops": flops / seconds / 1e9,
            "nll": float(-ll.mean()),
        }
    if args.bf16:
        diff = results["bfloat16"] - results["float32"]
        record["bfloat16"]["mean_change"] = float(diff.mean())
        record["bfloat16"]["mean_abs_change"] = float(np.abs(diff).mean())
    record["flops"] = flops
    print("RECORD " + json.dumps(record), flush=True)


def table(records, args):
    lines = [
        f"`{args.preset}.log_likelihood`, k = {args.num_samples}, {args.num_images} random test "
        f"images, {args.calls} call(s); projected to {TEST_IMAGES:,} from the last.",
        "",
        "| backend | dtype | first call (s) | last call (s) | projected 10k (min) | GFLOP/s "
        "| matmul peak GFLOP/s | fraction of peak | NLL (nats) | change vs float32 (nats) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for record in records:
        for dtype in ("float32", "bfloat16"):
            row = record.get(dtype)
            if row is None:
                continue
            peak = record[f"peak_{dtype}"]
            change = (
                f"{row['mean_change']:+.4f} (mean abs {row['mean_abs_change']:.4f})"
                if "mean_change" in row
                else ""
            )
            lines.append(
                f"| {record['backend']} | {dtype} | {row['first_call_seconds']:.1f} | "
                f"{row['seconds']:.1f} | "
                f"{row['projected_minutes']:.1f} | {row['gflops']:.0f} | {peak:.0f} | "
                f"{row['gflops'] / peak:.2f} | {row['nll']:.3f} | {change} |"
            )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--bf16-backends", nargs="*", default=["tensorflow"], choices=BACKENDS)
    parser.add_argument("--num-images", type=int, default=500)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--preset", default="vae_binarized_mnist")
    parser.add_argument("--calls", type=int, default=1, help="timed calls per dtype")
    parser.add_argument("--out", help="write the records as JSON here")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.calls < 1:
        parser.error(f"--calls must be at least 1, got {args.calls}")
    if args.worker:
        return worker(args)
    records = []
    for backend in args.backends:
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            backend,
            "--num-images",
            str(args.num_images),
            "--num-samples",
            str(args.num_samples),
            "--preset",
            args.preset,
            "--calls",
            str(args.calls),
        ]
        if backend in args.bf16_backends:
            command.append("--bf16")
        env = {**os.environ, "KERAS_BACKEND": backend}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RECORD ")]
        if done.returncode or not lines:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"eval_speed: the {backend} worker failed ({done.returncode}).")
        records.append(json.loads(lines[-1][len("RECORD ") :]))
        print(f"{backend}: done", file=sys.stderr, flush=True)
    print(table(records, args))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "records": records}, f, indent=2)


if __name__ == "__main__":
    main()
