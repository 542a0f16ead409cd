"""Lossless compression of the binarized MNIST test set: keras-vae's
bits-back codec against gzip, bz2, lzma, PNG and WebP (issue 22, part 5).

One run on all 10,000 test images (28x28, 7,840,000 binary pixels). Every
format's output is decoded again and compared with the images; a mismatch
stops the run. Rates are bits per pixel of the whole output (headers and
containers included).

- gzip, bz2, lzma (level 9, lzma `9 | PRESET_EXTREME`) on two packings: the
  images as 0/1 bytes (one byte per pixel) and `np.packbits` of them (8
  pixels per byte, row-major); the table shows the better, and which.
- PNG: 1-bit images (Pillow mode "1", `optimize=True`), one PNG per image
  summed, and one 2800x2800 PNG tiling the 100x100 images.
- WebP lossless (Pillow, `lossless=True, quality=100, method=6`: the
  slowest, strongest setting), on 8-bit grey images 0/255, per image summed
  and tiled.
- keras-vae: `keras_vae.compression.compress` with the `vae_binarized_mnist`
  preset, beside the model's negative ELBO on the same images in bits per
  pixel (one posterior sample per image, seed 0); and with the
  `hvae_binarized_mnist` preset (`HierarchicalVAECodec`) when it exists
  (skipped with a note until that preset is trained).

    KERAS_BACKEND=tensorflow python benchmarks/compression_vs_formats.py \
        --output /tmp/compression.json
"""

import argparse
import bz2
import gzip
import io
import json
import lzma
import os
import platform
import sys
import time

# This file's name shadows the standard library's `compression` package
# (which JAX imports) when Python puts benchmarks/ first on sys.path.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import keras_vae as kv  # noqa: E402
from keras_vae import compression  # noqa: E402
from keras_vae.datasets.binarized_mnist import load_binarized_mnist  # noqa: E402

GRID = 100  # 100 x 100 tiles of 28 x 28
# Measured too once trained (`zoo/recipes/hvae_binarized_mnist.json`).
HIERARCHICAL_PRESET = "hvae_binarized_mnist"


def _check(ok, name):
    if not ok:
        raise SystemExit(f"{name}: the round trip does not give the images back")


def general_purpose(bits):
    """gzip / bz2 / lzma on 0/1 bytes and on packed bits: {name: (bytes, packing)}."""
    packings = {"0/1 bytes": bits.tobytes(), "np.packbits": np.packbits(bits).tobytes()}
    codecs = {
        "gzip": (lambda b: gzip.compress(b, 9, mtime=0), gzip.decompress),
        "bz2": (lambda b: bz2.compress(b, 9), bz2.decompress),
        "lzma": (lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
    }
    results = {}
    for name, (encode, decode) in codecs.items():
        sizes = {}
        for packing, raw in packings.items():
            data = encode(raw)
            _check(decode(data) == raw, f"{name} ({packing})")
            sizes[packing] = len(data)
        results[name] = sizes
    return results


def _png_1bit(image):
    buffer = io.BytesIO()
    Image.fromarray(image.astype(bool)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _webp(image):
    buffer = io.BytesIO()
    Image.fromarray(image * 255, mode="L").save(
        buffer, format="WEBP", lossless=True, quality=100, method=6
    )
    return buffer.getvalue()


def _decoded(data):
    with Image.open(io.BytesIO(data)) as image:
        return (np.asarray(image.convert("L")) > 127).astype(np.uint8)


def tiled(images):
    n, h, w = images.shape
    return images.reshape(GRID, n // GRID, h, w).transpose(0, 2, 1, 3).reshape(GRID * h, -1)


def image_formats(images):
    """PNG and WebP, per image summed and tiled: {name: {layout: bytes}}."""
    results = {}
    for name, encode in (("PNG (1-bit)", _png_1bit), ("WebP lossless", _webp)):
        total = 0
        for image in images:
            data = encode(image)
            _check(np.array_equal(_decoded(data), image), name)
            total += len(data)
        grid = tiled(images)
        data = encode(grid)
        _check(np.array_equal(_decoded(data), grid), f"{name} (tiled)")
        results[name] = {"one file per image": total, "one tiled image": len(data)}
    return results


def keras_vae_codec(images, batch_size, preset="vae_binarized_mnist"):
    model = kv.from_preset(preset)
    x = images[..., None].astype("float32")
    compression.compress(model, x[:batch_size], batch_size=batch_size)  # compile
    start = time.perf_counter()
    data = compression.compress(model, x, batch_size=batch_size)
    compress_s = time.perf_counter() - start
    start = time.perf_counter()
    restored = compression.decompress(model, data)
    decompress_s = time.perf_counter() - start
    _check(np.array_equal(restored, x), "keras-vae")
    header = compression.read_header(data)
    elbo = model.elbo(x, seed=0)
    return {
        "bytes": len(data),
        "header_bytes": len(data) - 4 * len(compression.container.unpack(data)[3]),
        "initial_bits": header["initial_bits"],
        "ramp": header.get("ramp"),
        "compress_images_per_s": len(x) / compress_s,
        "decompress_images_per_s": len(x) / decompress_s,
        "negative_elbo_bits": float(-elbo.sum() / np.log(2)),
    }


def _psnr(mse):
    return 10 * np.log10(1.0 / mse)


def _lossy_bytes(grid, fmt, quality):
    buffer = io.BytesIO()
    options = {"method": 6} if fmt == "WEBP" else {"optimize": True}
    Image.fromarray(grid, mode="L").save(buffer, format=fmt, quality=quality, **options)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as image:
        decoded = np.asarray(image.convert("L"), np.float64) / 255
    return len(data), decoded


def lossy(num_images, seed=0):
    """The VQ-VAE codec on a random subset of MNIST's test set, and JPEG /
    WebP at the lowest quality whose PSNR reaches the codec's."""
    ((x, _),) = kv.datasets.load("mnist", splits=("test",))
    x = x[np.random.default_rng(seed).choice(len(x), num_images, replace=False)]
    model = kv.from_preset("vq_vae_mnist")
    start = time.perf_counter()
    data = compression.compress(model, x)
    compress_s = time.perf_counter() - start
    start = time.perf_counter()
    restored = compression.decompress(model, data)
    decompress_s = time.perf_counter() - start
    expected = np.clip(model.decode_indices(model.encode(x)), 0, 1)
    _check(np.allclose(restored, expected, atol=1e-6), "VQ codec")
    pixels = x.size
    mse = float(np.mean((restored.astype(np.float64) - x) ** 2))
    prior_bits = float(-model.prior.log_prob(model.encode(x)).sum() / np.log(2))
    rows = [{
        "format": "keras-vae VQ, vq_vae_mnist",
        "bits_per_image": 8 * len(data) / len(x),
        "bits_per_pixel": 8 * len(data) / pixels,
        "mse": mse,
        "psnr": _psnr(mse),
        "how": f"prior's own -log2 p(codes): {prior_bits / len(x):.1f} bits/image; "
        f"compress {len(x) / compress_s:.0f} img/s, decompress {len(x) / decompress_s:.0f} img/s",
    }]
    images = np.round(x[..., 0] * 255).astype(np.uint8)
    grid = tiled(images)
    target = rows[0]["psnr"]
    for name, fmt in (("JPEG", "JPEG"), ("WebP", "WEBP")):
        low, high = 1, 100
        while low < high:  # the lowest quality reaching the target PSNR
            middle = (low + high) // 2
            size, decoded = _lossy_bytes(grid, fmt, middle)
            if _psnr(np.mean((decoded - grid / 255) ** 2)) >= target:
                high = middle
            else:
                low = middle + 1
        size, decoded = _lossy_bytes(grid, fmt, low)
        mse = float(np.mean((decoded - grid / 255) ** 2))
        rows.append({
            "format": name,
            "bits_per_image": 8 * size / len(x),
            "bits_per_pixel": 8 * size / pixels,
            "mse": mse,
            "psnr": _psnr(mse),
            "how": f"quality={low} (lowest reaching the VQ PSNR), one tiled image",
        })
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32, help="keras-vae images per call")
    parser.add_argument("--output", help="also write the results as JSON here")
    parser.add_argument(
        "--lossy",
        type=int,
        metavar="N",
        help="instead: the lossy VQ-VAE codec against JPEG and WebP on N random MNIST "
        "test images (the codec decodes 49 positions one at a time: slow)",
    )
    args = parser.parse_args()
    if args.lossy:
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        rows = lossy(args.lossy)
        print(f"MNIST test set, {args.lossy} random images (seed 0); backend "
              f"{keras.backend.backend()}; started {started}; load average "
              f"{os.getloadavg()[0]:.1f} at the end.\n")
        print("| format | bits per image | bits per pixel | MSE | PSNR (dB) | how |")
        print("| --- | ---: | ---: | ---: | ---: | --- |")
        for r in rows:
            print(f"| {r['format']} | {r['bits_per_image']:.1f} | {r['bits_per_pixel']:.4f} | "
                  f"{r['mse']:.5f} | {r['psnr']:.2f} | {r['how']} |")
        if args.output:
            with open(args.output, "w") as f:
                json.dump(rows, f, indent=2)
        return

    x, _ = load_binarized_mnist("test")
    images = x[..., 0].astype(np.uint8)
    pixels = images.size
    bpp = lambda num_bytes: 8 * num_bytes / pixels  # noqa: E731
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]

    rows = []
    for name, sizes in general_purpose(images).items():
        packing = min(sizes, key=sizes.get)
        rows.append((name, bpp(sizes[packing]), f"best of 0/1 bytes {bpp(sizes['0/1 bytes']):.3f}, "
                     f"np.packbits {bpp(sizes['np.packbits']):.3f}: {packing}"))
    for name, sizes in image_formats(images).items():
        layout = min(sizes, key=sizes.get)
        other = max(sizes, key=sizes.get)
        rows.append((name, bpp(sizes[layout]), f"{layout}; {other}: {bpp(sizes[other]):.3f}"))
    codecs = {}
    for preset in ("vae_binarized_mnist", HIERARCHICAL_PRESET):
        if preset not in kv.list_presets():
            print(f"note: no {preset} preset yet (its recipe is not trained); its row is "
                  "skipped.", file=sys.stderr)
            continue
        codec = codecs[preset] = keras_vae_codec(images, args.batch_size, preset)
        rate = bpp(codec["bytes"])
        elbo_rate = codec["negative_elbo_bits"] / pixels
        ramp = f", steps ramp every {codec['ramp']} images" if codec["ramp"] else ""
        rows.append((
            f"keras-vae, {preset}",
            rate,
            f"negative ELBO {elbo_rate:.4f} bpp; codec overhead "
            f"{100 * (rate / elbo_rate - 1):.2f}% (header {codec['header_bytes']} bytes, "
            f"initial bits {codec['initial_bits']}{ramp}); "
            f"compress {codec['compress_images_per_s']:.0f} img/s, "
            f"decompress {codec['decompress_images_per_s']:.0f} img/s",
        ))

    print(f"Binarized MNIST test set: {len(images)} images, {pixels} pixels; "
          f"backend {keras.backend.backend()}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; started {started}, load average {load:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at the end. Every round trip verified.\n")
    print("| format | bits per pixel | how |\n| --- | ---: | --- |")
    for name, value, how in sorted(rows, key=lambda row: -row[1]):
        print(f"| {name} | {value:.4f} | {how} |")
    if args.output:
        with open(args.output, "w") as f:
            json.dump({"rows": rows, "keras_vae": codecs.get("vae_binarized_mnist"),
                       "keras_vae_presets": codecs, "backend": keras.backend.backend(),
                       "started": started}, f, indent=2)


if __name__ == "__main__":
    main()
