"""Where JAX's ARCH training time goes: the kernel gradient of Conv2DTranspose.

Usage:

    KERAS_BACKEND=jax python benchmarks/jax_conv_transpose_grad.py [--batch 128]

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
# This folder's compression.py would shadow the `compression` module JAX imports.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
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

    xla = jax.jit(lambda k, dy: jax.vjp(forward, k)[1](dy)[0])
    patches = jax.jit(patches_kernel_gradient)
    reference, candidate = xla(kernel, dy), patches(x, dy)
    error = float(jnp.max(jnp.abs(reference - candidate)) / jnp.max(jnp.abs(reference)))
    print(f"relative error {error:.2e}")
    assert error < 1e-4, "the patches gradient does not match XLA's"
    times = {"xla": [], "patches": []}
    for _ in range(args.repeats):
        for name, fn, inputs in (("xla", xla, (kernel, dy)), ("patches", patches, (x, dy))):
            start = time.perf_counter()
            jax.block_until_ready(fn(*inputs))
            times[name].append(time.perf_counter() - start)
    medians = {name: sorted(t)[len(t) // 2] * 1000 for name, t in times.items()}
    print(
        f"batch {args.batch}: XLA kernel gradient {medians['xla']:.1f} ms, "
        f"patches + matmul {medians['patches']:.1f} ms "
        f"({medians['xla'] / medians['patches']:.1f}x)"
    )


if __name__ == "__main__":
    main()
