"""The matmul form of narrow convolutions (keras_vae/training/narrow_conv.py) against Keras' op.

Usage (one backend per process):

    KERAS_BACKEND=jax python benchmarks/narrow_conv.py --rounds 5

Two measurements, each alternating the two forms in one process:

1. the layer: forward and both gradients of a 3x3 convolution to one
   channel at 28x28 (ARCH's output layer: 32 input channels; the default
   VAE's: 16), batch 128, best of `--rounds` x 10 calls;
2. training: `fit` of ARCH and of the default conv VAE (`benchmarks/gpu/worker.py`)
   on `--num-images` binarized MNIST training images, batch 128, one model
   traced with `KERAS_VAE_NARROW_CONV=0` and one with it on, alternated
   epoch by epoch; the median images/s of `--rounds` epochs.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def layer_times(rounds):
    import keras
    import numpy as np
    from keras import ops

    from keras_vae.training.narrow_conv import NARROW_CONV_ENV, narrow_convs

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    for channels in (32, 16):
        x = ops.convert_to_tensor(rng.random((128, 28, 28, channels), dtype="float32"))
        kernel = ops.convert_to_tensor(rng.standard_normal((3, 3, channels, 1), dtype="float32"))
        upstream = ops.convert_to_tensor(rng.standard_normal((128, 28, 28, 1), dtype="float32"))

        def loss(x, kernel):
            with narrow_convs():
                return ops.sum(ops.conv(x, kernel, 1, "same") * upstream)

        def step_for(flag):
            os.environ[NARROW_CONV_ENV] = flag
            if backend == "jax":
                import jax

                step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
                step(x, kernel)  # traced with the flag
                return lambda: jax.block_until_ready(step(x, kernel))
            if backend == "tensorflow":
                import tensorflow as tf

                @tf.function
                def step(x, kernel):
                    with tf.GradientTape() as tape:
                        tape.watch([x, kernel])
                        value = loss(x, kernel)
                    return value, tape.gradient(value, [x, kernel])

                step(x, kernel)
                return lambda: [t.numpy() for t in tf.nest.flatten(step(x, kernel))]

            def step():
                os.environ[NARROW_CONV_ENV] = flag  # torch runs eagerly
                xx, kk = x.detach().requires_grad_(), kernel.detach().requires_grad_()
                loss(xx, kk).backward()
                return kk.grad

            return step

        steps = {"keras": step_for("0"), "matmul": step_for("1")}
        times = {name: [] for name in steps}
        for _ in range(rounds):
            for name, step in steps.items():
                start = time.perf_counter()
                for _ in range(10):
                    step()
                times[name].append((time.perf_counter() - start) / 10 * 1e3)
        print(
            f"{backend} layer 3x3 {channels}->1 at 28x28, batch 128, forward + gradients: "
            f"Keras {min(times['keras']):.2f} ms, matmul {min(times['matmul']):.2f} ms",
            flush=True,
        )


def training(network, rounds, num_images):
    import keras
    import numpy as np

    sys.path.insert(0, os.path.join(HERE, "gpu"))
    sys.path.insert(0, HERE)
    import worker  # benchmarks/gpu/worker.py: ARCH and the default VAE
    from pythae_side_by_side import load_images

    import keras_vae as kv
    from keras_vae.training.narrow_conv import NARROW_CONV_ENV

    x = load_images(os.environ.get("KERAS_VAE_DATA_DIR", "../shared/data"), True, num_images)
    models = {}
    for flag in ("0", "1"):
        os.environ[NARROW_CONV_ENV] = flag
        model = worker.build(network, kv, keras)
        model.fit(x[:1280], epochs=1, batch_size=128, verbose=0)  # compiles with the flag
        models[flag] = model
    speeds = {flag: [] for flag in models}
    for _ in range(rounds):
        for flag, model in models.items():
            os.environ[NARROW_CONV_ENV] = flag  # read at each step on torch
            start = time.perf_counter()
            model.fit(x, epochs=1, batch_size=128, verbose=0, shuffle=True)
            speeds[flag].append(len(x) / (time.perf_counter() - start))
    for flag, name in (("0", "Keras"), ("1", "matmul")):
        rounds_text = ", ".join(f"{s:.0f}" for s in speeds[flag])
        print(
            f"{keras.backend.backend()} {network} training, {name} form: median "
            f"{np.median(speeds[flag]):.0f} images/s (rounds {rounds_text})",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--num-images", type=int, default=6400)
    parser.add_argument("--networks", nargs="*", default=["arch", "default"])
    args = parser.parse_args(argv)
    layer_times(args.rounds)
    for network in args.networks:
        training(network, args.rounds, args.num_images)


if __name__ == "__main__":
    main()
