"""A toy step function over 6 tokens for the sampler tests: a bigram
model (`LOG_PROBS[previous token]`), `<pad>` 0, `<bos>` 1, `<eos>` 2."""

import numpy as np
from keras import ops

PAD, BOS, EOS = 0, 1, 2
# Rows: previous token; columns: next token. <pad> and <bos> never follow.
PROBS = np.array(
    [
        [0, 0, 1.0, 0, 0, 0],
        [0, 0, 0.05, 0.5, 0.45, 0],  # after <bos>: 3 (0.5) or 4 (0.45)
        [0, 0, 1.0, 0, 0, 0],
        [0, 0, 0.3, 0.05, 0.05, 0.6],  # after 3: mostly 5, then <eos>
        [0, 0, 0.9, 0.05, 0.05, 0],  # after 4: <eos> (0.9)
        [0, 0, 0.4, 0.3, 0.3, 0],  # after 5
    ]
)
with np.errstate(divide="ignore"):
    LOG_PROBS = np.log(PROBS).astype("float32")


def step(tokens, state):
    """`state` is `[count]`, a per-row step counter (checks that the
    samplers carry and reorder state)."""
    (count,) = state
    log_probs = ops.take(ops.convert_to_tensor(LOG_PROBS), ops.cast(tokens, "int32"), axis=0)
    return log_probs, [count + 1]


def initial_state(batch):
    return [ops.zeros((batch,), "int32")]


def run(sampler, batch=3, max_length=6):
    ids = sampler(step, initial_state(batch), BOS, EOS, PAD, max_length)
    return np.asarray(ops.convert_to_numpy(ids))


def log_prob(ids):
    """log p of token id rows (tokens, <eos>, <pad>...) under the toy."""
    total, previous = 0.0, BOS
    for token in ids:
        total += float(LOG_PROBS[previous, token])
        if token == EOS:
            return total
        previous = token
    return total
