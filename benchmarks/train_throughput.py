"""Training throughput of the MNIST conv VAE, per backend and decoder design.

Usage:
    python benchmarks/train_throughput.py [--backends tensorflow jax torch]
        [--decoders default sub_pixel_transpose transpose upsample depth_to_space]
        [--num-images 12800] [--rounds 3]

One process per backend builds the conv VAE (latent 32, hidden_dims (32, 64),
Bernoulli) once per decoder on statically binarized MNIST, compiles each with
Adam (jit where the backend supports it) and warms it up for 5 steps; then
`--rounds` times it trains each model one epoch of `--num-images` images at
batch 128, the designs alternated within each round so that a shared
machine's load hits them alike, and prints each design's median images/s.

Decoders (the encoder is the same strided-conv network in all of them; each
upsampling stage goes 7x7x64 -> 14x14x64 -> 28x28x32, then a 3x3 conv):
- default: `keras_vae.models.networks.conv_decoder`, the library's default
  (today the same network as sub_pixel_transpose);
- sub_pixel_transpose: `kv.layers.SubPixelConvTranspose2D(f)` per stage, the
  exact equivalent of the transposed conv below as a 2x2 conv to 4f channels
  then `DepthToSpace(2)`;
- transpose: `Conv2DTranspose(f, 3, strides=2, padding="same")` per stage;
- upsample: `UpSampling2D(2)` then a 3x3 conv per stage (the default before
  sub_pixel_transpose);
- depth_to_space: a 3x3 conv to 4f channels, then `DepthToSpace(2)` per stage
  (the first default).
"""

import argparse
import json
import os
import platform
import subprocess
import sys

WORKER = r"""
import json, statistics, sys, time
import keras, numpy as np
import keras_vae as kv
from keras import layers

decoder_kinds, num_images, rounds = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])

def decoder(kind):
    if kind == "default":
        return kv.models.networks.conv_decoder(32, (28, 28, 1), (32, 64))
    inputs = keras.Input((32,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(inputs)
    x = layers.Reshape((7, 7, 64))(x)
    for filters in (64, 32):
        if kind == "transpose":
            x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu")(x)
        elif kind == "sub_pixel_transpose":
            x = kv.layers.SubPixelConvTranspose2D(filters, activation="relu")(x)
        elif kind == "depth_to_space":
            x = layers.Conv2D(4 * filters, 3, padding="same", activation="relu")(x)
            x = kv.layers.DepthToSpace(2)(x)
        elif kind == "upsample":
            x = layers.UpSampling2D(2)(x)
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        else:
            raise ValueError(f"Unknown decoder {kind!r}.")
    return keras.Model(inputs, layers.Conv2D(1, 3, padding="same")(x))

(x_train, _), = kv.datasets.load("binarized_mnist", splits=("train",))
x = x_train[:num_images]
models = {}
for kind in decoder_kinds:
    model = kv.VAE(input_shape=(28, 28, 1), latent_dim=32, decoder=decoder(kind), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(x[:128 * 5], epochs=1, batch_size=128, verbose=0)  # compile + warm-up
    models[kind] = model
rates = {kind: [] for kind in decoder_kinds}
for _ in range(rounds):  # alternate the designs: the load of a shared machine hits all
    for kind, model in models.items():
        start = time.perf_counter()
        model.fit(x, epochs=1, batch_size=128, verbose=0)
        rates[kind].append(len(x) / (time.perf_counter() - start))
print(json.dumps({kind: statistics.median(r) for kind, r in rates.items()}))
"""

DECODERS = ("default", "sub_pixel_transpose", "transpose", "upsample", "depth_to_space")


def run(backend, decoders, num_images, rounds):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, ",".join(decoders), str(num_images), str(rounds)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{backend} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--decoders", nargs="+", choices=DECODERS, default=list(DECODERS))
    parser.add_argument("--num-images", type=int, default=12800)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, {args.num_images} images per round, "
        f"batch 128, median of {args.rounds} rounds, load average {load:.1f} at start",
        flush=True,
    )
    results = {}
    for backend in args.backends:
        results[backend] = run(backend, args.decoders, args.num_images, args.rounds)
        print(f"# {backend}: " + json.dumps({k: round(v) for k, v in results[backend].items()}),
              flush=True)
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")
    header = " | ".join(args.backends)
    print(f"| decoder (per upsampling stage) | {header} | slowest / fastest |")
    print("| --- |" + " ---: |" * (len(args.backends) + 1))
    for decoder in args.decoders:
        rates = [results[backend][decoder] for backend in args.backends]
        cells = " | ".join(f"{rate:.0f} img/s" for rate in rates)
        print(f"| {decoder} | {cells} | {min(rates) / max(rates):.2f} |")


if __name__ == "__main__":
    main()
