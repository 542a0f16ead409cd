"""`log_likelihood` on torch with and without `torch.compile` of the decoder
(issue 24 part 4).

    python benchmarks/torch_compile_eval.py --num-images 64

Loads `vae_binarized_mnist` on the torch backend and scores `--num-images`
random binarized MNIST test images (`np.random.default_rng(0).choice`: the
file is sorted by digit) with k = 1000 through the library's
`log_likelihood` twice: with `KERAS_VAE_TORCH_COMPILE=0` (eager decoder)
and `=1` (the decoder under `torch.compile`, `keras_vae.training.
CompiledDecoder`; the library compiles on its own from 200,000 draws, 200
images at k = 1000). One untimed call of each first (the compiled one
compiles), then `--rounds` rounds of both, the order swapped each round;
prints seconds, minutes projected to the 10k test images and the mean NLL
of each call (the same noise: the NLLs must agree). `--profile` then
prints `torch.profiler`'s operator table of one more compiled call.
Results in benchmarks/RESULTS.md.
"""

import argparse
import os
import time

os.environ["KERAS_BACKEND"] = "torch"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-decode", type=int, default=8192)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    import numpy as np

    import keras_vae as kv

    (test,) = kv.datasets.load("binarized_mnist", splits=("test",))
    x = np.asarray(test[0], "float32").reshape(-1, 28, 28, 1)
    x = x[np.random.default_rng(0).choice(len(x), args.num_images, replace=False)]
    model = kv.from_preset("vae_binarized_mnist")
    settings = {"eager": "0", "torch.compile": "1"}

    def score(name):
        os.environ["KERAS_VAE_TORCH_COMPILE"] = settings[name]
        start = time.perf_counter()
        log_px = model.log_likelihood(x, num_samples=1000, max_decode=args.max_decode)
        return time.perf_counter() - start, float(-np.mean(log_px))

    for name in settings:
        seconds, _ = score(name)
        print(f"{name} first call: {seconds:.1f} s", flush=True)
    for round_index in range(args.rounds):
        order = list(settings) if round_index % 2 == 0 else list(settings)[::-1]
        for name in order:
            seconds, nll = score(name)
            minutes = seconds / len(x) * 10_000 / 60
            print(
                f"round {round_index + 1} {name}: {seconds:.1f} s, {minutes:.1f} min per 10k, "
                f"NLL {nll:.4f}",
                flush=True,
            )
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            seconds, _ = score("torch.compile")
        print(f"profiled torch.compile call: {seconds:.1f} s", flush=True)
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
