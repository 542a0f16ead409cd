"""Keras' torch convolution against the library's copy-free one.

Usage:

    python benchmarks/torch_conv.py [--rounds 3] [--eval-images 64] [--train-images 12800]

`keras_vae.training.torch` replaces Keras' torch `conv` and
`conv_transpose` with versions that hand torch the channels-last inputs as
a permuted view instead of copying them twice. This times, in one process
and alternating the two in every round (the original functions are put
back for the "keras" rows, the existing 1-sized-axis workaround stays in
both):

- `decoder`: `vae_binarized_mnist`'s decoder on 256 latents, no gradient
  (ms per call, best of 5 after a warm-up);
- `eval`: `vae_binarized_mnist.log_likelihood(x, num_samples=1000)` on
  `--eval-images` random binarized MNIST test images (never a prefix: the
  file is sorted by digit), projected to the 10,000 test images (minutes);
- `train`: ARCH (issue 24's network, `benchmarks/gpu/worker.py`) at batch
  128, one `fit` epoch over `--train-images` random training images after
  a warm-up epoch (images/s).

Prints a Markdown table of the per-round medians, their ratio and the load
average (a loaded machine moves both columns: compare the ratio).
"""

import argparse
import os
import statistics
import sys
import time

os.environ["KERAS_BACKEND"] = "torch"
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "gpu"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from keras.src.backend.torch import nn  # noqa: E402

import keras_vae as kv  # noqa: E402
import keras_vae.training.torch  # noqa: E402, F401  (installs the copy-free conv)

PATCHED = {name: getattr(nn, name) for name in ("conv", "conv_transpose")}


def use(variant):
    for name, function in PATCHED.items():
        setattr(nn, name, function if variant == "copy-free" else function.keras_vae_original)


def time_decoder(model, z):
    with torch.no_grad():
        model.decoder(z)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            model.decoder(z)
            best = min(best, time.perf_counter() - start)
    return best * 1e3


def time_eval(model, x):
    start = time.perf_counter()
    model.log_likelihood(x, num_samples=1000)
    return (time.perf_counter() - start) / len(x) * 1e4 / 60


def time_train(model, x):
    start = time.perf_counter()
    model.fit(x, batch_size=128, epochs=1, shuffle=False, verbose=0)
    return len(x) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--eval-images", type=int, default=64)
    parser.add_argument("--train-images", type=int, default=12_800)
    parser.add_argument("--skip", nargs="*", default=[], choices=["decoder", "eval", "train"])
    args = parser.parse_args()

    from worker import build

    rng = np.random.default_rng(0)
    (test,) = kv.datasets.load("binarized_mnist", splits=("test",))
    test = np.asarray(test[0], "float32").reshape(-1, 28, 28, 1)
    x_eval = test[rng.choice(len(test), args.eval_images, replace=False)]
    (train,) = kv.datasets.load("binarized_mnist", splits=("train",))
    train = np.asarray(train[0], "float32").reshape(-1, 28, 28, 1)
    x_train = train[rng.choice(len(train), args.train_images, replace=False)]
    model = kv.from_preset("vae_binarized_mnist")
    z = torch.randn(256, model.latent_dim, generator=torch.Generator().manual_seed(0))
    arch = build("arch", kv, keras)
    for variant in ("keras", "copy-free"):  # warm-up
        use(variant)
        arch.fit(x_train[:1280], batch_size=128, epochs=1, verbose=0)
        model.log_likelihood(x_eval[:8], num_samples=10)

    tasks = {
        "decoder": ("decoder 256 latents (ms)", lambda: time_decoder(model, z)),
        "eval": (
            f"eval k=1000, {args.eval_images} images (min per 10k)",
            lambda: time_eval(model, x_eval),
        ),
        "train": ("ARCH training batch 128 (images/s)", lambda: time_train(arch, x_train)),
    }
    results = {task: {"keras": [], "copy-free": []} for task in tasks if task not in args.skip}
    for round_ in range(args.rounds):
        for task in results:
            for variant in ("keras", "copy-free") if round_ % 2 == 0 else ("copy-free", "keras"):
                use(variant)
                value = tasks[task][1]()
                results[task][variant].append(value)
                print(f"round {round_} {task} {variant}: {value:.2f}", flush=True)
    use("copy-free")
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, rounds {args.rounds}")
    print("| measure | Keras' conv | copy-free | ratio |")
    print("|---|---|---|---|")
    for task, values in results.items():
        keras_median = statistics.median(values["keras"])
        fast_median = statistics.median(values["copy-free"])
        ratio = keras_median / fast_median if task != "train" else fast_median / keras_median
        print(f"| {tasks[task][0]} | {keras_median:.2f} | {fast_median:.2f} | {ratio:.2f}x |")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
