"""Where JAX's ARCH training time goes: the kernel gradient of Conv2DTranspose.

Usage:

    KERAS_BACKEND=jax python benchmarks/jax_conv_transpose_grad.py [--batch 128]
    KERAS_BACKEND=jax python benchmarks/jax_conv_transpose_grad.py --train [--rounds 3] \
        [--network arch|default]

The second form times the training of ARCH (issue 24's network, built as
in benchmarks/gpu/worker.py) or of the default conv VAE in one process,
alternating two compiled models in each round: Keras' own convolution
kernel gradients (`KERAS_VAE_FAST_CONV_GRADIENTS=0` while the step is
traced) and the library's JAX train step with its matmul kernel gradients
for `conv` and `conv_transpose`
(`keras_vae.training.jax_conv_gradients.fast_conv_gradients`, the
default). Each round is
one `fit` epoch over `--train-images` random binarized MNIST training
images at batch 128, after a warm-up epoch; prints images/s per round, the
medians and the load average.

For ARCH's first transposed convolution (7x7x64 -> 14x14x64, 3x3 kernel,
stride 2, "same") this times the kernel gradient two ways, in one process,
alternating: XLA's own (`jax.vjp` of `keras.ops.conv_transpose`; XLA:CPU
lowers it to a dilated, reversed convolution with the batch as the
contracted dimension, which it has no fast kernel for), and the same
gradient as stride-2 3x3 patches of the output gradient times the inputs
(`conv_general_dilated_patches` + one einsum, a matmul). It checks that
both agree (relative error < 1e-4) and prints the median times. The second
form is what a JAX-specific lowering (a `jax.custom_vjp` around Keras'
`conv_transpose`) would use.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # this checkout's keras_vae, not another install


def patches_kernel_gradient(x, dy, kernel_size=3, strides=2):
    """The kernel gradient of a "same" stride-2 `conv_transpose`, as a matmul.

    `x`: its inputs (B, H, W, Cin); `dy`: the gradient of its outputs
    (B, 2H, 2W, Cout). Returns (k, k, Cout, Cin), Keras' kernel layout.
    """
    import jax
    import jax.numpy as jnp

    cout = dy.shape[-1]
    patches = jax.lax.conv_general_dilated_patches(
        dy,
        (kernel_size, kernel_size),
        (strides, strides),
        ((0, 1), (0, 1)),  # found by comparison with jax.vjp, see main()
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )  # (B, H, W, Cout * k * k), ordered (Cout, k, k)
    patches = patches.reshape(-1, cout, kernel_size, kernel_size)
    return jnp.einsum("ncij,nd->ijcd", patches, x.reshape(-1, x.shape[-1]))


def train_comparison(args):
    """Training images/s of `args.network` with and without the library's
    matmul kernel gradients, alternated in one process."""
    import keras
    import numpy as np

    import keras_vae as kv
    from keras_vae.training import jax_conv_gradients

    sys.path.insert(0, os.path.join(HERE, "gpu"))
    from worker import build

    ((x_train, _),) = kv.datasets.load("binarized_mnist", splits=("train",))
    rng = np.random.default_rng(0)
    x = np.asarray(x_train)[rng.choice(len(x_train), args.train_images, replace=False)]
    systems = {"keras kernel gradients": "0", "keras-vae matmul kernel gradients": "1"}
    models = {}
    for name, flag in systems.items():
        # Read when the step is traced.
        os.environ[jax_conv_gradients.FAST_CONV_GRADIENTS_ENV] = flag
        keras.utils.set_random_seed(0)
        models[name] = build(args.network, kv, keras)
        models[name].fit(x[:256], batch_size=128, epochs=1, shuffle=False, verbose=0)
    rates = {name: [] for name in systems}
    print(f"load average at start {os.getloadavg()[0]:.1f}", flush=True)
    for round_index in range(args.rounds):
        for name, flag in systems.items():
            os.environ[jax_conv_gradients.FAST_CONV_GRADIENTS_ENV] = flag
            start = time.perf_counter()
            models[name].fit(x, batch_size=128, epochs=1, shuffle=True, verbose=0)
            rates[name].append(len(x) / (time.perf_counter() - start))
            print(f"round {round_index + 1} {name}: {rates[name][-1]:.0f} images/s", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    medians = {name: sorted(r)[len(r) // 2] for name, r in rates.items()}
    before, after = medians.values()
    print(
        f"{args.network} network on JAX, batch 128, {len(x)} images per round, "
        f"median of {args.rounds}: "
        f"{before:.0f} images/s with Keras' gradient, {after:.0f} with keras-vae's "
        f"({after / before:.1f}x)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--train", action="store_true", help="time training instead")
    parser.add_argument("--network", choices=("arch", "default"), default="arch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-images", type=int, default=1280)
    args = parser.parse_args()
    if args.train:
        return train_comparison(args)
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((args.batch, 7, 7, 64)), "float32")
    kernel = jnp.asarray(rng.standard_normal((3, 3, 64, 64)), "float32")
    dy = jnp.asarray(rng.standard_normal((args.batch, 14, 14, 64)), "float32")

    def forward(k):
        return keras.ops.conv_transpose(x, k, 2, padding="same")

    from keras.src.backend.jax import nn as jax_nn

    from keras_vae.training.jax import with_fast_kernel_gradient

    fast = with_fast_kernel_gradient(jax_nn.conv_transpose)

    def both(op):
        return jax.jit(lambda x, k, dy: jax.vjp(lambda x, k: op(x, k, 2, "same"), x, k)[1](dy))

    xla = jax.jit(lambda k, dy: jax.vjp(forward, k)[1](dy)[0])
    patches = jax.jit(patches_kernel_gradient)
    inputs_only = jax.jit(lambda x, dy: jax.vjp(lambda x: forward_x(x, kernel), x)[1](dy)[0])

    def forward_x(x, k):
        return keras.ops.conv_transpose(x, k, 2, padding="same")

    xla_both, library_both = both(jax_nn.conv_transpose), both(fast)
    reference, candidate = xla(kernel, dy), patches(x, dy)
    error = float(jnp.max(jnp.abs(reference - candidate)) / jnp.max(jnp.abs(reference)))
    print(f"relative error {error:.2e}")
    assert error < 1e-4, "the patches gradient does not match XLA's"
    library_kernel = library_both(x, kernel, dy)[1]
    error = float(jnp.max(jnp.abs(reference - library_kernel)) / jnp.max(jnp.abs(reference)))
    assert error < 1e-4, "the library's kernel gradient does not match XLA's"
    times = {"xla": [], "patches": [], "inputs": [], "xla_both": [], "library_both": []}
    for _ in range(args.repeats):
        for name, fn, inputs in (
            ("xla", xla, (kernel, dy)),
            ("patches", patches, (x, dy)),
            ("inputs", inputs_only, (x, dy)),
            ("xla_both", xla_both, (x, kernel, dy)),
            ("library_both", library_both, (x, kernel, dy)),
        ):
            start = time.perf_counter()
            jax.block_until_ready(fn(*inputs))
            times[name].append(time.perf_counter() - start)
    medians = {name: sorted(t)[len(t) // 2] * 1000 for name, t in times.items()}
    print(
        f"batch {args.batch}: XLA kernel gradient {medians['xla']:.1f} ms, "
        f"patches + matmul {medians['patches']:.1f} ms "
        f"({medians['xla'] / medians['patches']:.1f}x); XLA's input gradient alone "
        f"{medians['inputs']:.1f} ms; both gradients: Keras' op {medians['xla_both']:.1f} ms, "
        f"keras-vae's train-step op {medians['library_both']:.1f} ms "
        f"({medians['xla_both'] / medians['library_both']:.1f}x); "
        f"load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
