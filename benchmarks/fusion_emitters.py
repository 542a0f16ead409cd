"""A/B of XLA:CPU's MLIR fusion emitters on JAX (keras_vae/training/xla_cpu_options.py).

Usage: python benchmarks/fusion_emitters.py on|off

`off` is the library's options as they are (`xla_cpu_use_fusion_emitters`
False, since 2026-12-07); `on` removes that option (XLA's default). Prints,
for the default conv VAE: its first fit of 1,280 binarized MNIST images
(mostly the train step's compile), its images/s over one epoch of 12,800
after that, two `log_likelihood` calls (64 images, k = 200); then, for
`vae_binarized_mnist`, a k = 1000 `log_likelihood` warm-up on 8 random
test images and the timed call on 64. Run the two settings alternated, in
fresh processes, on an idle machine.
"""

import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_vae as kv  # noqa: E402
from keras_vae.training import xla_cpu_options  # noqa: E402


def timed(function):
    start = time.time()
    result = function()
    return time.time() - start, result


def main(setting):
    if setting not in ("on", "off"):
        raise SystemExit("usage: python benchmarks/fusion_emitters.py on|off")
    if setting == "on":
        options = dict(xla_cpu_options.CPU_OPTIONS)
        options.pop("xla_cpu_use_fusion_emitters", None)
        xla_cpu_options.CPU_OPTIONS = options
    ((x, _),) = kv.datasets.load("binarized_mnist", ("train",))
    x = x[:12800]
    keras.utils.set_random_seed(0)
    model = kv.VAE(input_shape=(28, 28, 1), latent_dim=32)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    first, _ = timed(lambda: model.fit(x[:1280], epochs=1, batch_size=128, verbose=0))
    epoch, _ = timed(lambda: model.fit(x, epochs=1, batch_size=128, verbose=0))
    calls = [timed(lambda: model.log_likelihood(x[:64], num_samples=200, seed=0))[0]]
    calls.append(timed(lambda: model.log_likelihood(x[:64], num_samples=200, seed=0))[0])
    print(
        f"{setting}: default VAE first fit {first:.1f} s, {len(x) / epoch:.0f} img/s, "
        f"log_likelihood {calls[0]:.1f} / {calls[1]:.1f} s; options {xla_cpu_options.options()}",
        flush=True,
    )
    ((x_test, _),) = kv.datasets.load("binarized_mnist", ("test",))
    images = x_test[np.random.default_rng(0).permutation(len(x_test))[:64]]  # random
    preset = kv.from_preset("vae_binarized_mnist")
    warm, _ = timed(lambda: preset.log_likelihood(images[:8], num_samples=1000, seed=0))
    seconds, log_px = timed(lambda: preset.log_likelihood(images, num_samples=1000, seed=0))
    print(
        f"{setting}: vae_binarized_mnist k=1000 warm-up {warm:.1f} s, 64 images {seconds:.1f} s, "
        f"NLL {-np.mean(log_px):.5f}",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
