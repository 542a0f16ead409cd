"""Training throughput of the MNIST conv VAE, per backend and decoder design.

Usage:
    python benchmarks/train_throughput.py [--backends tensorflow jax torch]
        [--decoders depth_to_space transpose upsample] [--num-images 12800]

Each (backend, decoder) pair runs in its own process: build the default conv
VAE (latent 32, hidden_dims (32, 64), Bernoulli) on statically binarized
MNIST, compile with Adam (jit where the backend supports it), warm up for a
few steps, then time one epoch of `--num-images` images at batch 128.

Decoders (the encoder is the same strided-conv network in all three):
- upsample: `UpSampling2D(2)` then a 3x3 conv per stage (the library
  default since this benchmark);
- depth_to_space: 3x3 conv to 4x channels, then sub-pixel `DepthToSpace(2)`
  per stage (the first default);
- transpose: `Conv2DTranspose(filters, 3, strides=2)` per stage.
"""

import argparse
import json
import os
import platform
import subprocess
import sys

WORKER = r"""
import json, sys, time
import keras, numpy as np
import keras_vae as kv
from keras import layers

decoder_kind, num_images = sys.argv[1], int(sys.argv[2])

def decoder(kind):
    inputs = keras.Input((32,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(inputs)
    x = layers.Reshape((7, 7, 64))(x)
    for filters in (64, 32):
        if kind == "transpose":
            x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu")(x)
        elif kind == "depth_to_space":
            x = layers.Conv2D(4 * filters, 3, padding="same", activation="relu")(x)
            x = kv.layers.DepthToSpace(2)(x)
        else:
            x = layers.UpSampling2D(2)(x)
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, layers.Conv2D(1, 3, padding="same")(x))

(x_train, _), = kv.datasets.load("binarized_mnist", splits=("train",))
x = x_train[:num_images]
custom = decoder(decoder_kind)
model = kv.VAE(input_shape=(28, 28, 1), latent_dim=32, decoder=custom, seed=0)
model.compile(optimizer=keras.optimizers.Adam(1e-3))
model.fit(x[:128 * 5], epochs=1, batch_size=128, verbose=0)  # compile + warm-up
start = time.perf_counter()
model.fit(x, epochs=1, batch_size=128, verbose=0)
seconds = time.perf_counter() - start
print(json.dumps({"images_per_s": len(x) / seconds, "steps_per_s": len(x) / 128 / seconds}))
"""


def run(backend, decoder, num_images):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", WORKER, decoder, str(num_images)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"{backend}/{decoder} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument(
        "--decoders", nargs="+", default=["depth_to_space", "transpose", "upsample"]
    )
    parser.add_argument("--num-images", type=int, default=12800)
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, {args.num_images} images, batch 128"
    )
    print("| decoder | backend | images/s | steps/s |")
    print("| --- | --- | ---: | ---: |")
    for decoder in args.decoders:
        for backend in args.backends:
            result = run(backend, decoder, args.num_images)
            print(
                f"| {decoder} | {backend} | {result['images_per_s']:.0f} | "
                f"{result['steps_per_s']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
