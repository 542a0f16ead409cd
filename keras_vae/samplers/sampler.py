from keras import ops


class Sampler:
    """Base class of the text decoding strategies.

    A sampler writes sentences one token at a time with a model's step
    function `step(tokens, state) -> (log_probs, state)`: `tokens` are the
    previous token ids `(batch,)`, `state` a list of tensors whose first
    axis is the batch (an LSTM's `[h, c]`, and whatever else the model
    needs at every step, e.g. its latent `z`), `log_probs` the float32
    next-token log-probabilities `(batch, vocabulary_size)`, `-inf` where
    a token may never be generated. Starting from `start_id`, the loop
    (one `keras.ops.while_loop`, so it also traces into a graph) stops when
    every row has produced `end_id` or after `max_length` tokens.

    Subclasses choose the next token: they override `get_next_token`
    (greedy, random) or, for strategies that keep several hypotheses per
    row, `__call__` (beam search).

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> from keras_vae.samplers import GreedySampler
    >>> # A toy model over 4 tokens (0 <pad>, 1 <bos>, 2 <eos>, 3 a word):
    >>> # "a" until the state reaches 2, then <eos>.
    >>> word = np.array([[-9., -9., -9., 0.]], "float32")
    >>> eos = np.array([[-9., -9., 0., -9.]], "float32")
    >>> def step(tokens, state):
    ...     (count,) = state
    ...     return ops.where(count[:, None] < 2, word, eos), [count + 1]
    >>> ids = GreedySampler()(step, [ops.zeros((1,), "int32")], start_id=1,
    ...                       end_id=2, pad_id=0, max_length=5)
    >>> ops.convert_to_numpy(ids).tolist()
    [[3, 3, 2, 0, 0, 0]]
    """

    def __call__(self, step, state, start_id, end_id, pad_id, max_length):
        """Runs the decoding loop.

        Args:
            step: the model's step function (see above).
            state: list of tensors, the state before the first step.
            start_id: int. The first input token (`<bos>`).
            end_id: int. The token that ends a row (`<eos>`).
            pad_id: int. Written after `end_id`.
            max_length: int. Most tokens generated before `end_id`.

        Returns:
            int32 token ids `(batch, max_length + 1)`: the tokens, `end_id`,
            then `pad_id` (no `start_id`).
        """
        state = list(state)
        batch = ops.shape(state[0])[0]
        columns = ops.arange(max_length + 1, dtype="int32")[None, :]

        def cond(t, tokens, done, output, *state):
            return ops.logical_and(t < max_length, ops.logical_not(ops.all(done)))

        def body(t, tokens, done, output, *state):
            log_probs, state = step(tokens, list(state))
            tokens = ops.cast(self.get_next_token(log_probs), "int32")
            tokens = ops.where(done, end_id, tokens)
            written = ops.where(done, pad_id, tokens)
            output = ops.where(columns == t, written[:, None], output)
            done = ops.logical_or(done, ops.equal(tokens, end_id))
            return (t + 1, tokens, done, output, *state)

        loop_vars = (
            ops.convert_to_tensor(0, dtype="int32"),
            ops.full((batch,), start_id, dtype="int32"),
            ops.zeros((batch,), dtype="bool"),
            ops.full((batch, max_length + 1), pad_id, dtype="int32"),
            *state,
        )
        return self.run_loop(cond, body, loop_vars)[3]

    def run_loop(self, cond, body, loop_vars):
        """`keras.ops.while_loop(cond, body, loop_vars)`."""
        return ops.while_loop(cond, body, loop_vars)

    def get_next_token(self, log_probs):
        """The next token ids `(batch,)` of log-probabilities
        `(batch, vocabulary_size)`."""
        raise NotImplementedError(f"{type(self).__name__}.get_next_token")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
