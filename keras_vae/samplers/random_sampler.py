import numpy as np
from keras import ops

from keras_vae.samplers.sampler import Sampler


class RandomSampler(Sampler):
    """Random sampling: each token drawn from `softmax(log_probs / T)`.

    With `top_k`, only the `top_k` most likely tokens of each step can be
    drawn (Fan et al. 2018). The draws are Gumbel-max (`argmax(log_probs /
    T + g)`, `g = -log(-log(u))`, `u` uniform) made by NumPy from `seed`, so
    a seed gives the same sentences on every backend. Drawing on the host,
    this sampler runs its loop eagerly (a Python loop over the base class's
    step body); it does not trace into a graph.

    The NumPy generator is made once, when the sampler is built: successive
    calls continue its stream (like `keras.random.SeedGenerator`); build a
    new sampler (or pass a seed to the model's verb) to start again.

    Args:
        temperature: float > 0. Below 1 favours likely tokens, above 1
            flattens the distribution. Defaults to `1.0`.
        top_k: int or `None`. Draw among the `top_k` most likely tokens
            only; `None` draws from the whole vocabulary. Defaults to `None`.
        seed: int, `None` or a `numpy.random.Generator` (used as is).
            Defaults to `None`.

    Example:

    >>> import numpy as np
    >>> sampler = RandomSampler(temperature=0.5, top_k=2, seed=0)
    >>> log_probs = np.log(np.array([[0.1, 0.3, 0.6]] * 4))
    >>> set(sampler.get_next_token(log_probs).tolist()) <= {1, 2}
    True
    """

    def __init__(self, temperature=1.0, top_k=None, seed=None):
        self.temperature = float(temperature)
        if not self.temperature > 0:
            raise ValueError(f"`temperature` must be > 0, got {temperature}.")
        self.top_k = None if top_k is None else int(top_k)
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"`top_k` must be >= 1 or None, got {top_k}.")
        self.seed = seed
        self.generator = np.random.default_rng(seed)  # A Generator is used as is.

    def run_loop(self, cond, body, loop_vars):
        while bool(ops.convert_to_numpy(cond(*loop_vars))):
            loop_vars = body(*loop_vars)
        return loop_vars

    def get_next_token(self, log_probs):
        log_probs = np.asarray(ops.convert_to_numpy(log_probs), dtype="float64")
        if self.top_k is not None and self.top_k < log_probs.shape[-1]:
            kth = np.sort(log_probs, axis=-1)[:, -self.top_k, None]
            log_probs = np.where(log_probs >= kth, log_probs, -np.inf)
        gumbel = -np.log(-np.log(self.generator.uniform(size=log_probs.shape)))
        return np.argmax(log_probs / self.temperature + gumbel, axis=-1).astype("int32")

    def get_config(self):
        seed = self.seed if isinstance(self.seed, (int, type(None))) else None
        return {"temperature": self.temperature, "top_k": self.top_k, "seed": seed}
