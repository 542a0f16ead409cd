"""Lossless compression of binary images with the zoo's VAEs (bits-back ANS).

`compress(model, images)` turns binarized images into bytes with bits-back
coding (BB-ANS, Townsend et al. 2019): each image costs about its negative
ELBO under `model`, e.g. 0.17 bits per pixel on binarized MNIST with the
`vae_binarized_mnist` preset. `decompress(model, data)` gives the images back
bit-exactly, or raises a `CompressionError`. The entropy coder is
`constriction`: `pip install 'keras-vae[compression]'`. See `VAECodec` for
the discretisation and `container` for the file layout. A `HierarchicalVAE`
is coded the same way over all its latent groups (`HierarchicalVAECodec`).

With a `VQVAE` that has a prior (the `vq_vae_mnist` preset), compression is
lossy (`VQCodec`): the image's code indices are coded with the
Transformer prior, and `decompress` returns their reconstruction.

A stream decodes only with the same model weights (checked through their
sha256) on the backend that compressed it (other backends compute slightly
different floats, so they are refused, naming both backends). The images'
sha256 is verified after decoding. The header records the versions of
keras-vae, Keras and the backend's library: other versions may compute
other floats in the last bits, and a stream that fails to decode under
them says which differ.

Example:

>>> import numpy as np
>>> import keras_vae as kv
>>> model = kv.VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp",
...                hidden_dims=(8,))
>>> images = np.random.default_rng(0).integers(0, 2, (5, 4, 4, 1)).astype("float32")
>>> data = kv.compression.compress(model, images)
>>> data[:4]
b'KVZ\\x1a'
>>> restored = kv.compression.decompress(model, data)
>>> bool(np.array_equal(restored, images)), restored.dtype
(True, dtype('float32'))
"""

import hashlib
import sys

import numpy as np

from keras_vae.compression import container
from keras_vae.compression.compression_error import CompressionError
from keras_vae.compression.hierarchical_vae_codec import HierarchicalVAECodec
from keras_vae.compression.vae_codec import VAECodec
from keras_vae.compression.vq_codec import VQCodec

# Model class name -> codec class. A codec has VAECodec's interface: `name`,
# `setting_names`, `stream_defaults` (settings older streams lack, with the
# value they were coded with), `settings()`, `prepare(images)`, `encode(symbols, progress)`
# -> `(words, info)`, `decode(words, count, info, progress)` and
# `finish(symbols, dtype)`.
CODECS = {
    "VAE": VAECodec,
    "BetaVAE": VAECodec,
    "HierarchicalVAE": HierarchicalVAECodec,
    "VQVAE": VQCodec,
}

__all__ = [
    "CODECS",
    "CompressionError",
    "HierarchicalVAECodec",
    "VAECodec",
    "VQCodec",
    "compress",
    "decompress",
    "read_header",
    "weights_sha256",
]


def weights_sha256(model):
    """sha256 of a model's floating-point weights (shapes, dtypes and bytes,
    in order); integer state such as step counters is left out."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(weight.numpy())
        if not np.issubdtype(value.dtype, np.floating):
            continue
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(value.astype(value.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def _codec_class(model):
    cls = CODECS.get(type(model).__name__)
    if cls is None:
        raise CompressionError(
            f"No codec for a {type(model).__name__}; keras_vae.compression codes images "
            f"with {sorted(CODECS)} models."
        )
    return cls


def _codec(model, **settings):
    cls = _codec_class(model)
    return cls(model, **{k: v for k, v in settings.items() if k in cls.setting_names})


def compress(model, images, preset=None, latent_bits=12, batch_size=32, progress=None):
    """Compresses images with `model`: losslessly (bits-back ANS) with a VAE.

    Args:
        model: a `VAE` with a Bernoulli likelihood, e.g.
            `kv.from_preset("vae_binarized_mnist")`, or a `HierarchicalVAE`
            (lossless), or a `VQVAE`
            with a prior, e.g. `kv.from_preset("vq_vae_mnist")` (lossy,
            see `VQCodec`).
        images: array of shape `(n, *model.input_shape_)`: for a VAE with
            values 0 and 1 (any dtype; `decompress` returns the same dtype),
            for a VQVAE floats in `[0, 1]`.
        preset: optional str. The preset name written in the header
            (defaults to the name in `model.preset_metadata`, if any).
        latent_bits: int. `2**latent_bits` equal-mass buckets per latent
            dimension. Defaults to `12`.
        batch_size: int. Images per model call. Defaults to `32`.
            Ignored by codecs without this setting.
        progress: optional callable `progress(done, total)`, called after
            each model call.

    Returns:
        The compressed stream as `bytes` (see `container` for its layout).
    """
    import keras

    codec = _codec(model, latent_bits=latent_bits, batch_size=batch_size)
    images = np.asarray(images)
    symbols = codec.prepare(images)
    words, info = codec.encode(symbols, progress=progress)
    if preset is None:
        preset = (getattr(model, "preset_metadata", None) or {}).get("name")
    header = {
        "codec": codec.name,
        "model": type(model).__name__,
        "preset": preset,
        "backend": keras.backend.backend(),
        "shape": list(model.input_shape_),
        "count": len(images),
        "dtype": images.dtype.name,
        "software": _software_versions(),
        **codec.settings(),
        **info,
    }
    images_sha256 = hashlib.sha256(symbols.tobytes()).hexdigest()
    return container.pack(header, weights_sha256(model), images_sha256, words)


def read_header(data):
    """The header of a compressed stream, as a dict.

    Adds `weights_sha256`, `images_sha256`, `num_bytes` (the whole stream)
    and `bits_per_pixel`. Raises a `CompressionError` for a stream that is
    not readable (see `container.unpack`).
    """
    header, weights, images, _ = container.unpack(data)
    pixels = header.get("count", 0) * int(np.prod(header.get("shape", [0])))
    return {
        **header,
        "weights_sha256": weights,
        "images_sha256": images,
        "num_bytes": len(data),
        "bits_per_pixel": 8 * len(data) / pixels if pixels else None,
    }


def decompress(model, data, progress=None):
    """Decompresses `compress`'s output with the same model, bit-exactly.

    Args:
        model: the model that compressed the stream (same weights).
        data: bytes from `compress`.
        progress: optional callable `progress(done, total)`.

    Returns:
        The images, of the shape and dtype given to `compress`.

    Raises:
        CompressionError: the stream is not a keras-vae stream, has an
            unknown version, is truncated or corrupted, was compressed with
            other weights, another kind of model, other image shapes or on
            another backend, or the decoded images fail their checksum.
            Nothing is returned then.
    """
    import keras

    header, weights, images_sha256, words = container.unpack(data)
    try:
        codec_name, model_name = header["codec"], header["model"]
        backend, shape, count = header["backend"], tuple(header["shape"]), int(header["count"])
        dtype = np.dtype(header["dtype"])
    except (KeyError, TypeError, ValueError) as error:
        raise CompressionError(f"The stream's header is incomplete or invalid: {error!r}.")
    if model_name != type(model).__name__:
        raise CompressionError(
            f"The stream was compressed with a {model_name}, not a {type(model).__name__}."
        )
    actual = weights_sha256(model)
    if actual != weights:
        preset = header.get("preset")
        raise CompressionError(
            f"The stream was compressed with other model weights "
            f"(preset {preset!r}, weights sha256 {weights[:16]}...); this model's "
            f"weights hash to {actual[:16]}.... Decompress with the same model."
        )
    if shape != tuple(model.input_shape_):
        raise CompressionError(
            f"The stream holds images of shape {shape}; the model takes {model.input_shape_}."
        )
    current = keras.backend.backend()
    if backend != current:
        raise CompressionError(
            f"The stream was compressed on the {backend} backend and cannot be decoded "
            f"on {current}: backends compute slightly different probabilities. "
            f"Decompress with KERAS_BACKEND={backend}."
        )
    cls = _codec_class(model)
    try:
        settings = {
            key: header[key] if key in header else cls.stream_defaults[key]
            for key in cls.setting_names
        }
    except KeyError as error:
        raise CompressionError(f"The stream's header lacks {error}.") from None
    codec = _codec(model, **settings)
    if codec.name != codec_name:
        raise CompressionError(f"The stream uses codec {codec_name!r}, not {codec.name!r}.")
    try:
        symbols = codec.decode(words, count, header, progress=progress)
    except KeyError as error:
        raise CompressionError(f"The stream's header lacks {error}.") from None
    except CompressionError as error:
        raise CompressionError(f"{error}{_versions_hint(header)}") from None
    if hashlib.sha256(symbols.tobytes()).hexdigest() != images_sha256:
        raise CompressionError(
            "The decoded images (or codes) do not match the checksum stored at compression "
            "(the model computed other probabilities than when it compressed)."
            + _versions_hint(header)
        )
    return codec.finish(symbols, dtype)


def _software_versions():
    """The versions a stream's floats depend on (stored in its header):
    keras-vae, Keras and the backend's library."""
    import keras

    import keras_vae

    backend = keras.backend.backend()
    library = sys.modules.get(backend)  # imported by Keras for the backend
    return {
        "keras_vae": keras_vae.__version__,
        "keras": keras.__version__,
        backend: getattr(library, "__version__", None),
    }


def _versions_hint(header):
    """What to tell a user whose stream failed to decode, if it was written
    with other versions (`""` otherwise, and for streams without them)."""
    written, here = header.get("software"), _software_versions()
    if not isinstance(written, dict) or written == here:
        return ""
    changed = ", ".join(
        f"{name} {written.get(name)} (here {here.get(name)})"
        for name in sorted(set(written) | set(here))
        if written.get(name) != here.get(name)
    )
    return (
        f" The stream was written with other versions ({changed}); their floats can "
        "differ in the last bits: decompress with the versions that compressed."
    )
