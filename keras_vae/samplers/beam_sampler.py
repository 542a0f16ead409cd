import numpy as np
from keras import ops

from keras_vae.samplers.sampler import Sampler


class BeamSampler(Sampler):
    """Beam search for the most likely sentence, `argmax_x log p(x)`.

    Keeps the `num_beams` best partial sentences of each row; a sentence
    that ends (`end_id`) joins the row's finished list, and a row stops once
    a finished sentence scores at least as well as every live one (scores
    only fall) or `num_beams` sentences have finished. No length penalty.
    The bookkeeping is NumPy on the host around the model's step, so the
    loop runs eagerly; `state` rows are repeated `num_beams` times and
    reordered with their hypotheses, so the model's step needs nothing
    beam-specific.

    Args:
        num_beams: int >= 1. Hypotheses kept per row; `1` is greedy
            decoding. Defaults to `5`.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> a_first = np.array([[-50., -50., -3., -0.1]], "float32")
    >>> then_eos = np.array([[-50., -50., -0.1, -3.]], "float32")
    >>> def step(tokens, state):  # "a" (3) is likely first, then <eos> (2)
    ...     first = ops.equal(tokens, 1)[:, None]
    ...     return ops.where(first, a_first, then_eos), state
    >>> BeamSampler(num_beams=2)(step, [ops.zeros((1, 1))], start_id=1,
    ...                          end_id=2, pad_id=0, max_length=4).tolist()
    [[3, 2, 0, 0, 0]]
    """

    def __init__(self, num_beams=5):
        self.num_beams = int(num_beams)
        if self.num_beams < 1:
            raise ValueError(f"`num_beams` must be >= 1, got {num_beams}.")

    def __call__(self, step, state, start_id, end_id, pad_id, max_length):
        width = self.num_beams
        state = [np.repeat(ops.convert_to_numpy(s), width, axis=0) for s in state]
        count = len(state[0]) // width
        tokens = np.full((count * width,), start_id)
        scores = np.full((count, width), -np.inf)
        scores[:, 0] = 0.0  # One live hypothesis to start with.
        histories = np.zeros((count, width, 0), dtype="int64")
        finished = [[] for _ in range(count)]
        for t in range(max_length + 1):
            log_probs, state = step(
                ops.convert_to_tensor(tokens.astype("int32")),
                [ops.convert_to_tensor(s) for s in state],
            )
            log_probs = np.asarray(ops.convert_to_numpy(log_probs), dtype="float64")
            state = [ops.convert_to_numpy(s) for s in state]
            vocab = log_probs.shape[-1]
            if t == max_length:  # Out of room: only end_id may follow.
                log_probs[:, np.arange(vocab) != end_id] = -np.inf
            total = scores[:, :, None] + log_probs.reshape(count, width, vocab)
            total = total.reshape(count, width * vocab)
            candidates = np.argsort(-total, axis=1)[:, : 2 * width]
            new_scores = np.full((count, width), -np.inf)
            origins = np.zeros((count, width), dtype="int64")
            new_tokens = np.full((count, width), end_id, dtype="int64")
            for row in range(count):
                kept = 0
                for flat in candidates[row]:
                    score = total[row, flat]
                    if not np.isfinite(score) or kept == width:
                        break
                    beam, token = divmod(int(flat), vocab)
                    if token == end_id:
                        if len(finished[row]) < width:
                            finished[row].append((score, histories[row, beam].tolist()))
                        continue
                    new_scores[row, kept] = score
                    origins[row, kept] = beam
                    new_tokens[row, kept] = token
                    kept += 1
                best_done = max((s for s, _ in finished[row]), default=-np.inf)
                if len(finished[row]) >= width or best_done >= new_scores[row].max():
                    new_scores[row] = -np.inf
            if not np.isfinite(new_scores).any():
                break
            histories = np.concatenate(
                [
                    np.take_along_axis(histories, origins[:, :, None], axis=1),
                    new_tokens[:, :, None],
                ],
                axis=2,
            )
            flat_origins = (np.arange(count)[:, None] * width + origins).reshape(-1)
            state = [s[flat_origins] for s in state]
            scores = new_scores
            tokens = new_tokens.reshape(-1)
        output = np.full((count, max_length + 1), pad_id, dtype="int32")
        for row in range(count):
            best = max(finished[row], key=lambda item: item[0], default=None)
            words = best[1] if best else histories[row, int(np.argmax(scores[row]))]
            words = list(words)[:max_length]
            output[row, : len(words)] = words
            output[row, len(words)] = end_id
        return output

    def get_config(self):
        return {"num_beams": self.num_beams}
