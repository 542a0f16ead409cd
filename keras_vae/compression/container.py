"""The `.kvz` container: a short header, then the entropy-coded stream.

Layout (all integers little-endian):

| bytes | content |
| --- | --- |
| 4 | magic `b"KVZ\\x1a"` |
| 1 | format version (`FORMAT_VERSION`) |
| 2 | `h`: length of the JSON header |
| `h` | JSON header (UTF-8): codec, model, preset, backend, images' shape, dtype, count |
| 32 | sha256 of the model's weights (`weights_sha256`) |
| 32 | sha256 of the original images as 0/1 bytes (`images_sha256`) |
| 4 | `w`: number of 32-bit words in the stream |
| `4 w` | the ANS stream |
| 4 | CRC-32 of every byte before it |

The CRC catches a corrupted or truncated file before anything is decoded;
the images' sha256 is checked after decoding, so that floating-point drift
between the compressing and the decompressing machine can never give
silently wrong images.
"""

import json
import struct
import zlib

import numpy as np

from keras_vae.compression.compression_error import CompressionError

MAGIC = b"KVZ\x1a"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<4sBH")
_COUNT = struct.Struct("<I")


def pack(header, weights_sha256, images_sha256, words):
    """Serializes a header dict, two sha256 digests and the stream words."""
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(text) >= 1 << 16:
        raise ValueError(f"The header is too long ({len(text)} bytes).")
    words = np.ascontiguousarray(words, dtype="<u4")
    body = b"".join(
        [
            _PREFIX.pack(MAGIC, FORMAT_VERSION, len(text)),
            text,
            bytes.fromhex(weights_sha256),
            bytes.fromhex(images_sha256),
            _COUNT.pack(len(words)),
            words.tobytes(),
        ]
    )
    return body + _COUNT.pack(zlib.crc32(body))


def unpack(data):
    """Parses `pack`'s output: `(header, weights_sha256, images_sha256, words)`.

    Raises:
        CompressionError: not a keras-vae stream, an unknown format version,
            a truncated stream or a CRC mismatch.
    """
    data = bytes(data)
    if len(data) < _PREFIX.size or data[:4] != MAGIC:
        raise CompressionError(
            "Not a keras-vae compressed stream (the magic bytes are "
            f"{data[:4]!r}, expected {MAGIC!r})."
        )
    _, version, length = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise CompressionError(
            f"Unknown keras-vae stream format version {version}; this keras-vae "
            f"reads version {FORMAT_VERSION}. Use the keras-vae release that wrote it."
        )
    offset = _PREFIX.size + length + 64
    if len(data) < offset + _COUNT.size:
        raise CompressionError(
            f"The stream is truncated: {len(data)} bytes, shorter than its header."
        )
    (num_words,) = _COUNT.unpack_from(data, offset)
    end = offset + _COUNT.size + 4 * num_words
    if len(data) != end + _COUNT.size:
        state = "truncated" if len(data) < end + _COUNT.size else "followed by extra bytes"
        raise CompressionError(
            f"The stream is {state}: {len(data)} bytes, but its header announces "
            f"{end + _COUNT.size}."
        )
    (crc,) = _COUNT.unpack_from(data, end)
    if zlib.crc32(data[:end]) != crc:
        raise CompressionError("The stream is corrupted: its CRC-32 does not match.")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + length].decode("utf-8"))
    except ValueError as error:
        raise CompressionError(f"The stream's header is unreadable: {error}.") from None
    start = _PREFIX.size + length
    weights_sha256 = data[start : start + 32].hex()
    images_sha256 = data[start + 32 : start + 64].hex()
    words = np.frombuffer(data, dtype="<u4", count=num_words, offset=offset + _COUNT.size)
    return header, weights_sha256, images_sha256, words.astype(np.uint32)
