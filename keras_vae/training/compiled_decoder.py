"""`torch.compile` for the decoder of importance-sampled evaluation (torch only).

`ImportanceScorer` runs on torch without a compiler (Keras' torch
`predict_on_batch` is eager); an evaluation that decodes many images goes
through `CompiledDecoder` instead, when `compiles_decoders` says so. Measured
with `benchmarks/eval_speed.py` (`vae_binarized_mnist`, k = 1000, 500
random test images, idle 2-core CPU): 28.8 minutes projected to the 10,000
test images, against 46.6 eager (benchmarks/RESULTS.md).
"""

import logging
import os

import torch

logger = logging.getLogger(__name__)

TORCH_COMPILE_ENV = "KERAS_VAE_TORCH_COMPILE"
# Compiling a decoder with inductor takes about 10 s on the 2-core CPU;
# `vae_binarized_mnist`'s decoder then runs about 0.1 ms faster per decoded
# image: repaid after about 100,000 draws.
COMPILE_MIN_DRAWS = 200_000


def compiles_decoders(num_draws):
    """Whether an evaluation decoding `num_draws` images compiles the
    decoder (`CompiledDecoder`): `KERAS_VAE_TORCH_COMPILE=1` always, `=0`
    never, unset (empty, or `auto`) from `COMPILE_MIN_DRAWS` draws on.

    >>> compiles_decoders(10_000), compiles_decoders(1_000_000)
    (False, True)
    """
    setting = os.environ.get(TORCH_COMPILE_ENV, "").strip().lower() or "auto"
    if setting in ("1", "true"):
        return True
    if setting in ("0", "false"):
        return False
    if setting != "auto":
        raise ValueError(f"{TORCH_COMPILE_ENV} must be 0, 1 or auto, got {setting!r}.")
    return num_draws >= COMPILE_MIN_DRAWS


class CompiledDecoder:
    """`decoder(z, training=False)` under `torch.compile` (inductor, static
    shapes), for evaluation loops that decode many batches of one shape.

    The first call compiles (seconds), a new input shape compiles again
    (torch recompiles up to 8 shapes per model, then runs the rest eagerly).
    Where compiling fails (no C++ compiler for inductor, an operation
    dynamo cannot trace) a warning names the error and this decoder, and
    every call from then on runs the decoder eagerly: an error of the
    decoder itself is raised by that eager call.

    Args:
        decoder: a torch-backend Keras model (or any callable torch module
            with a `name`) called as `decoder(z, training=False)`.

    Example (a plain torch module standing in for a Keras decoder):

    >>> import torch
    >>> class Double(torch.nn.Module):
    ...     name = "double"
    ...     def forward(self, z, training=False):
    ...         return 2 * z
    >>> decoder = CompiledDecoder(Double())
    >>> decoder(torch.ones(2, 3)).sum().item()
    12.0
    """

    def __init__(self, decoder):
        self.decoder = decoder
        self.compiled = torch.compile(self._decode, dynamic=False)

    def _decode(self, z):
        return self.decoder(z, training=False)

    def __call__(self, z, training=False):
        if self.compiled is not None:
            try:
                return self.compiled(z)
            except Exception as error:  # noqa: BLE001 - any compile failure
                logger.warning(
                    "torch.compile of decoder %r failed (%s: %s); it runs eagerly.",
                    self.decoder.name,
                    type(error).__name__,
                    str(error).splitlines()[0] if str(error) else "",
                )
                self.compiled = None
        return self.decoder(z, training=False)
