from keras import ops

from keras_vae.samplers.sampler import Sampler


class GreedySampler(Sampler):
    """Greedy decoding: the most likely token at every step.

    Deterministic, and written in `keras.ops` only: the eager verbs
    (`decoding="greedy"`) and the exported serving graph run this same
    loop, so they give the same sentences.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> sampler = GreedySampler()
    >>> log_probs = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]))
    >>> ops.convert_to_numpy(sampler.get_next_token(log_probs)).tolist()
    [2, 0]
    """

    def get_next_token(self, log_probs):
        return ops.argmax(log_probs, axis=-1)
