"""Why evaluation on JAX and torch stays above 30 minutes (issue 24 part 4).

`vae_binarized_mnist`'s decoder (dense 512, dense 7x7x64, 3x3 conv 64 ->
256 at 7x7, depth-to-space, 3x3 conv 64 -> 64 at 14x14, depth-to-space,
3x3 conv 16 -> 1 at 28x28) written directly in each backend's own ops, to
see how fast its convolutions can go outside Keras:

    python benchmarks/decoder_conv_variants.py jax
    python benchmarks/decoder_conv_variants.py torch

JAX: XLA's convolution per layer and batch size, against im2col, three
row matmuls and Winograd F(2x2, 3x3). torch: Keras-like separate ops
against a fully fused channels-last decoder and `torch.compile`.

Random weights and inputs (the speed does not depend on them); each
variant is checked against the backend's convolution first. Times are the
best of 3 repetitions, per decoder pass (one importance sample): 30
minutes for `log_likelihood` with k = 1000 on the 10k test images is 180
us per pass. Run it on an idle machine; results in benchmarks/RESULTS.md.
"""

import argparse
import time

import numpy as np

LAYERS = {"7x7 64->256": (7, 64, 256), "14x14 64->64": (14, 64, 64), "28x28 16->1": (28, 16, 1)}


def best_seconds(fn, reps=3):
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def jax_main(batches):
    import jax
    import jax.numpy as jnp
    from jax import lax

    def conv(x, w):
        return lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def padded(x):
        return jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))

    def im2col(x, w):
        n, h, wd, c = x.shape
        xp = padded(x)
        cols = jnp.concatenate(
            [xp[:, i : i + h, j : j + wd] for i in range(3) for j in range(3)], -1
        )
        return (cols.reshape(-1, 9 * c) @ w.reshape(9 * c, -1)).reshape(n, h, wd, -1)

    def row_matmuls(x, w):
        n, h, wd, c = x.shape
        cols = jnp.concatenate([padded(x)[:, :, j : j + wd] for j in range(3)], -1)
        rows = [cols[:, i : i + h].reshape(-1, 3 * c) @ w[i].reshape(3 * c, -1) for i in range(3)]
        return sum(rows).reshape(n, h, wd, -1)

    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], "float32")

    def winograd(x, w):
        """F(2x2, 3x3): 4x4 input tiles at stride 2, 16 batched matmuls."""
        n, h, wd, c = x.shape
        th, tw = (h + 1) // 2, (wd + 1) // 2
        xp = jnp.pad(x, ((0, 0), (1, 1 + 2 * th - h), (1, 1 + 2 * tw - wd), (0, 0)))
        d = [[xp[:, a : a + 2 * th : 2, b : b + 2 * tw : 2] for b in range(4)] for a in range(4)]

        def bt(v):
            return [v[0] - v[2], v[1] + v[2], v[2] - v[1], v[1] - v[3]]

        def at(v):
            return [v[0] + v[1] + v[2], v[1] - v[2] - v[3]]

        rows = [bt([d[a][b] for a in range(4)]) for b in range(4)]
        v = [bt([rows[b][p] for b in range(4)]) for p in range(4)]
        v = jnp.stack([v[p][q] for p in range(4) for q in range(4)]).reshape(16, -1, c)
        u = jnp.einsum("pi,ijcd,qj->pqcd", g, w, g).reshape(16, c, -1)
        m = jnp.einsum("ptc,pcd->ptd", v, u).reshape(4, 4, n, th, tw, -1)
        r = [at([m[p, q] for p in range(4)]) for q in range(4)]
        y = [[at([r[q][i] for q in range(4)])[j] for j in range(2)] for i in range(2)]
        y = jnp.stack([jnp.stack(y[i], axis=3) for i in range(2)], axis=2)
        return y.reshape(n, 2 * th, 2 * tw, -1)[:, :h, :wd]

    rng = np.random.default_rng(0)
    variants = {
        "xla conv": conv,
        "im2col": im2col,
        "row matmuls": row_matmuls,
        "winograd": winograd,
    }
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}")
    a = jnp.asarray(rng.normal(size=(2048, 2048)), "float32")
    matmul = jax.jit(lambda a: a @ a)
    seconds = best_seconds(lambda: matmul(a).block_until_ready())
    print(f"2048x2048 matmul: {2 * 2048**3 / seconds / 1e9:.0f} GFLOP/s")
    for batch in batches:
        for name, (size, cin, cout) in LAYERS.items():
            x = jnp.asarray(rng.normal(size=(batch, size, size, cin)), "float32")
            w = jnp.asarray(rng.normal(size=(3, 3, cin, cout)), "float32")
            reference = conv(x, w)
            for variant, fn in variants.items():
                fn = jax.jit(fn)
                error = float(jnp.max(jnp.abs(fn(x, w) - reference)) / jnp.max(jnp.abs(reference)))
                assert error < 1e-4, (variant, error)
                seconds = best_seconds(lambda fn=fn: fn(x, w).block_until_ready())
                flops = 2 * batch * size * size * 9 * cin * cout
                per_pass = seconds / batch * 1e6
                print(
                    f"batch {batch:5d} {name:13s} {variant:12s} {per_pass:7.1f} us per pass "
                    f"{flops / seconds / 1e9:5.0f} GFLOP/s",
                    flush=True,
                )


def torch_main(batches):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    shapes = {
        "d1": (32, 512),
        "d2": (512, 3136),
        "c1": (256, 64, 3, 3),
        "c2": (64, 64, 3, 3),
        "c3": (1, 16, 3, 3),
    }
    w = {
        k: torch.randn(*s) / np.sqrt(np.prod(s[1:]) if k[0] == "c" else s[0])
        for k, s in shapes.items()
    }
    b = {k: torch.randn(s[0] if k[0] == "c" else s[1]) * 0.1 for k, s in shapes.items()}

    def depth_to_space(x):  # NHWC, as keras_vae.layers.DepthToSpace
        n, h, wd, c = x.shape
        return (
            x.reshape(n, h, wd, 2, 2, c // 4)
            .permute(0, 1, 3, 2, 4, 5)
            .reshape(n, 2 * h, 2 * wd, c // 4)
        )

    def keras_like(z):
        """Separate bias add and ReLU, NHWC <-> NCHW views around each conv."""
        x = torch.relu(z @ w["d1"] + b["d1"])
        x = torch.relu(x @ w["d2"] + b["d2"]).reshape(-1, 7, 7, 64)
        for k in ("c1", "c2"):
            y = F.conv2d(x.permute(0, 3, 1, 2), w[k], padding=1).permute(0, 2, 3, 1)
            x = depth_to_space(torch.relu(y + b[k]))
        return F.conv2d(x.permute(0, 3, 1, 2), w["c3"], padding=1).permute(0, 2, 3, 1) + b["c3"]

    wl = {k: w[k].contiguous(memory_format=torch.channels_last) for k in ("c1", "c2", "c3")}

    def fused(z):
        """Bias in the convolution, in-place ReLU, channels-last memory."""
        x = torch.relu(torch.addmm(b["d1"], z, w["d1"]))
        x = torch.relu(torch.addmm(b["d2"], x, w["d2"])).reshape(-1, 7, 7, 64).permute(0, 3, 1, 2)
        for k in ("c1", "c2"):
            y = torch.relu_(F.conv2d(x, wl[k], b[k], padding=1))
            x = F.pixel_shuffle(y, 2).contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, wl["c3"], b["c3"], padding=1)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    variants = {
        "keras-like": keras_like,
        "fused": fused,
        "torch.compile(keras-like)": torch.compile(keras_like),
    }
    with torch.inference_mode():
        for batch in batches:
            z = torch.randn(batch, 32)
            for name, fn in variants.items():
                seconds = best_seconds(lambda fn=fn: fn(z))
                per_pass = seconds / batch
                print(
                    f"batch {batch:5d} {name:26s} {per_pass * 1e6:7.1f} us per pass "
                    f"{32.4e6 / per_pass / 1e9:5.0f} GFLOP/s, "
                    f"{per_pass * 1e7 / 60:5.1f} min per 10k images x 1000 samples",
                    flush=True,
                )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=("jax", "torch"))
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    args = parser.parse_args(argv)
    (jax_main if args.backend == "jax" else torch_main)(args.batches)


if __name__ == "__main__":
    main()
