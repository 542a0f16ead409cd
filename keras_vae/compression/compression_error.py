"""The error raised for a stream that cannot be decoded exactly."""


class CompressionError(ValueError):
    """A compressed stream cannot be decoded, or decoded images are wrong.

    Raised for a stream that is not a keras-vae stream, has an unknown
    format version, is truncated or corrupted, was compressed with another
    model or on another backend, or whose decoded images fail the checksum
    stored at compression time. `decompress` raises it instead of returning
    any partial or unverified images. A subclass of `ValueError`.
    """
