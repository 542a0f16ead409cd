"""Text decoding strategies over a model's step function.

`GreedySampler`, `RandomSampler` (temperature, top-k) and `BeamSampler`
share one interface (`Sampler`): called with a model's
`step(tokens, state) -> (log_probs, state)` and a start state, they return
token ids. The text models' verbs take one as `decoding=` (or its name,
see `get`).
"""

from keras_vae.samplers.beam_sampler import BeamSampler
from keras_vae.samplers.greedy_sampler import GreedySampler
from keras_vae.samplers.random_sampler import RandomSampler
from keras_vae.samplers.sampler import Sampler

NAMES = ("greedy", "sample", "beam")


def get(decoding, temperature=1.0, num_beams=5, seed=None):
    """The sampler `decoding` names.

    Args:
        decoding: a `Sampler` (returned as is), `"greedy"`, `"sample"`
            (`RandomSampler(temperature, seed=seed)`) or `"beam"`
            (`BeamSampler(num_beams)`).
        temperature: float. Used by `"sample"`. Defaults to `1.0`.
        num_beams: int. Used by `"beam"`. Defaults to `5`.
        seed: int, `None` or a `numpy.random.Generator`. Used by
            `"sample"`. Defaults to `None`.

    Example:

    >>> type(get("beam", num_beams=3)).__name__
    'BeamSampler'
    """
    if isinstance(decoding, Sampler):
        return decoding
    if decoding == "greedy":
        return GreedySampler()
    if decoding == "sample":
        return RandomSampler(temperature, seed=seed)
    if decoding == "beam":
        return BeamSampler(num_beams)
    raise ValueError(f"`decoding` must be a Sampler or one of {NAMES}, got {decoding!r}.")


__all__ = ["BeamSampler", "GreedySampler", "RandomSampler", "Sampler", "get"]
