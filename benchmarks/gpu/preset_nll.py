"""A preset's importance-sampled test NLL for `benchmarks/gpu/session.py` (its own process).

Usage (the driver sets KERAS_BACKEND=jax):

    python benchmarks/gpu/preset_nll.py --results FILE --preset hvae_binarized_mnist \\
        --num-samples 5000 --chunk 250

`model.log_likelihood(x, num_samples=--num-samples, seed=--seed)` on the
statically binarized MNIST test images, in a random order
(`np.random.default_rng(--order-seed).permutation`: the test file is sorted
by digit), `--chunk` images at a time. Each chunk is appended to `--results`
as one JSON line (its sum and sum of squares of `log p(x)`, its images'
count and seconds) as soon as it is done, so a worker killed at its time
limit leaves a uniformly random subset of the test set measured
(`session.py`'s `summarize_nll` turns the lines into the mean NLL and its
standard error).

k = 5000 is the estimator of the published figures the README sets beside
the presets (Burda et al. 2016; Tomczak & Welling 2018); the presets'
own figures are k = 1000 on the CPU.
"""

import argparse
import time

from worker import append  # benchmarks/gpu/worker.py: one JSON line, printed too


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="JSON-lines file to append to")
    parser.add_argument("--preset", required=True, help="a preset name or folder")
    parser.add_argument("--num-samples", type=int, default=5000, help="importance samples, k")
    parser.add_argument("--chunk", type=int, default=250, help="test images per record")
    parser.add_argument("--num-images", type=int, default=None, help="default: all 10,000")
    parser.add_argument("--seed", type=int, default=0, help="seed of the importance samples")
    parser.add_argument("--order-seed", type=int, default=0, help="seed of the images' order")
    args = parser.parse_args(argv)
    for name in ("num_samples", "chunk", "num_images"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np

    import keras_vae as kv

    start = time.perf_counter()
    model = kv.from_preset(args.preset)
    (x_test, _) = kv.datasets.load("binarized_mnist", splits=("test",))[0]
    order = np.random.default_rng(args.order_seed).permutation(len(x_test))
    x_test = x_test[order[: args.num_images]]
    append(
        args.results,
        {
            "kind": "nll_start",
            "preset": args.preset,
            "backend": keras.backend.backend(),
            "num_samples": args.num_samples,
            "test_images": len(x_test),
            "order_seed": args.order_seed,
            "seed": args.seed,
            "load_s": round(time.perf_counter() - start, 2),
        },
    )
    for begin in range(0, len(x_test), args.chunk):
        chunk_start = time.perf_counter()
        log_px = np.asarray(
            model.log_likelihood(
                x_test[begin : begin + args.chunk], num_samples=args.num_samples, seed=args.seed
            ),
            dtype="float64",
        )
        append(
            args.results,
            {
                "kind": "nll_chunk",
                "preset": args.preset,
                "num_samples": args.num_samples,
                "begin": begin,
                "images": len(log_px),
                "sum_log_px": float(log_px.sum()),
                "sum_sq_log_px": float(np.square(log_px).sum()),
                "seconds": round(time.perf_counter() - chunk_start, 3),
            },
        )


if __name__ == "__main__":
    main()
