import collections

import keras
import numpy as np
from keras import ops

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
CONTROL_TOKENS = frozenset((PAD, BOS, EOS))  # not words: refused in sentences


@keras.saving.register_keras_serializable(package="keras_vae")
class Vocabulary(keras.layers.Layer):
    """A word vocabulary saved with the model: strings in, token ids out.

    Sentences are split on whitespace (Python's `str.split()`: runs of any
    Unicode whitespace, the non-breaking space U+00A0 included; an exported
    TextVAE splits the same way). Ids `0..3` are the special tokens
    `<pad>` (0), `<bos>` (1), `<eos>` (2) and `<unk>` (3); the words of
    `tokens` follow in order. `<pad>`, `<bos>` and `<eos>` are not words: a
    sentence holding one is refused (`tokenize` raises a `ValueError`),
    since it would end or pad the row early; the word `<unk>` is accepted.
    Mapping strings to ids (`tokenize`) and back (`detokenize`) runs in
    NumPy outside the compiled graph, so it works the same on the
    TensorFlow, JAX and PyTorch backends (Keras'
    `StringLookup` needs TensorFlow string tensors). In the graph the layer
    maps token ids to their padding mask (`call`).

    The token list is part of `get_config`, so a `.keras` file or a preset
    carries its vocabulary.

    Args:
        tokens: list of str. The words, most frequent first by convention.
            Must not repeat and must not contain whitespace; special tokens
            in the list are ignored (they always take ids `0..3`).
        **kwargs: Base layer keyword arguments.

    Example:

    >>> vocabulary = Vocabulary(["the", "cat", "sat"])
    >>> ids = vocabulary.tokenize(["the cat sat", "the dog"])
    >>> ids
    array([[1, 4, 5, 6, 2],
           [1, 4, 3, 2, 0]], dtype=int32)
    >>> vocabulary.detokenize(ids)
    ['the cat sat', 'the <unk>']
    >>> vocabulary.size
    7
    """

    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, tokens, **kwargs):
        super().__init__(**kwargs)
        if isinstance(tokens, str):
            raise TypeError("`tokens` takes a list of words, not a string.")
        words = [str(t) for t in tokens if str(t) not in SPECIAL_TOKENS]
        seen = set()
        for word in words:
            if not word or word.split() != [word]:
                raise ValueError(
                    f"Vocabulary tokens must be non-empty and contain no "
                    f"whitespace; got {word!r}."
                )
            if word in seen:
                raise ValueError(f"Vocabulary token {word!r} appears twice.")
            seen.add(word)
        self.tokens = words
        self.id_to_token = list(SPECIAL_TOKENS) + words
        self.token_to_id = {t: i for i, t in enumerate(self.id_to_token)}

    @classmethod
    def from_sentences(cls, sentences, max_size=None, min_count=1, **kwargs):
        """Builds the vocabulary of a corpus: words by decreasing count.

        Args:
            sentences: iterable of str, whitespace-tokenized.
            max_size: int or `None`. Keep at most this many words (special
                tokens not counted). Defaults to `None` (all).
            min_count: int. Drop words seen fewer times. Defaults to `1`.

        Ties are broken alphabetically, so the result is deterministic.
        """
        counts = collections.Counter()
        for sentence in _checked_sentences(sentences):
            counts.update(sentence.split())
        words = sorted(
            (
                w
                for w, c in counts.items()
                if c >= min_count and w not in SPECIAL_TOKENS
            ),
            key=lambda w: (-counts[w], w),
        )
        if max_size is not None:
            words = words[: int(max_size)]
        return cls(words, **kwargs)

    @property
    def size(self):
        """Number of ids, special tokens included."""
        return len(self.id_to_token)

    def lengths(self, sentences):
        """Number of words of each sentence (NumPy int array)."""
        sentences = _checked_sentences(sentences)
        return np.array([len(s.split()) for s in sentences], dtype="int64")

    def tokenize(self, sentences, max_length=None, truncate=False):
        """Maps sentences to padded id rows `<bos> w1 .. wn <eos> <pad>..`.

        Args:
            sentences: list (or 1-D array) of str.
            max_length: int or `None`. The most words a sentence may have;
                rows are then `max_length + 2` ids long. `None` pads to the
                longest sentence given. Defaults to `None`.
            truncate: bool. Cut sentences longer than `max_length` (the
                row still ends with `<eos>`) instead of raising a
                `ValueError`. Defaults to `False`.

        Returns:
            int32 array of shape `(len(sentences), length + 2)`. Unknown
            words map to `<unk>`.

        Raises:
            ValueError: a sentence has `<pad>`, `<bos>` or `<eos>` as a word.
        """
        split = [s.split() for s in _checked_sentences(sentences)]
        for index, words in enumerate(split):
            control = CONTROL_TOKENS.intersection(words)
            if control:
                raise ValueError(
                    f"Sentence {index} contains {sorted(control)} as a word; "
                    f"{', '.join(sorted(CONTROL_TOKENS))} mark a row's start, end and "
                    "padding and cannot appear in a sentence."
                )
        longest = max((len(words) for words in split), default=0)
        if max_length is not None:
            max_length = int(max_length)
            if max_length < 0:
                raise ValueError(
                    f"`max_length` must be >= 0, got {max_length}."
                )
            if longest > max_length and not truncate:
                raise ValueError(
                    f"A sentence has {longest} words, more than max_length="
                    f"{max_length}. Pass truncate=True to cut long sentences."
                )
        length = longest if max_length is None else max_length
        ids = np.full((len(split), length + 2), self.pad_id, dtype="int32")
        lookup = self.token_to_id
        for row, words in enumerate(split):
            words = words[:length]
            ids[row, 0] = self.bos_id
            ids[row, 1 : len(words) + 1] = [
                lookup.get(w, self.unk_id) for w in words
            ]
            ids[row, len(words) + 1] = self.eos_id
        return ids

    def detokenize(self, ids):
        """Maps id rows back to sentences.

        Reading stops at the first `<eos>` or `<pad>`; `<bos>` is skipped.
        Accepts a 2-D array (one row per sentence) or a list of id lists.
        """
        sentences = []
        for row in ids:
            words = []
            for index in np.asarray(row).reshape(-1).tolist():
                index = int(index)
                if index in (self.eos_id, self.pad_id):
                    break
                if index == self.bos_id:
                    continue
                if not 0 <= index < self.size:
                    raise ValueError(
                        f"Token id {index} is outside the vocabulary "
                        f"(size {self.size})."
                    )
                words.append(self.id_to_token[index])
            sentences.append(" ".join(words))
        return sentences

    def call(self, token_ids):
        """The padding mask of `token_ids`: `True` where not `<pad>`."""
        return ops.not_equal(token_ids, self.pad_id)

    def compute_output_spec(self, token_ids):
        return keras.KerasTensor(token_ids.shape, dtype="bool")

    def get_config(self):
        return {**super().get_config(), "tokens": list(self.tokens)}


def _checked_sentences(sentences):
    """A list of str, or a `TypeError` naming what was passed instead."""
    if isinstance(sentences, (str, bytes)):
        raise TypeError(
            "Expected a list of sentences, got a single string. Wrap it in a "
            "list: [sentence]."
        )
    if isinstance(sentences, np.ndarray) and sentences.ndim != 1:
        raise ValueError(
            f"Expected a 1-D array of sentences, got shape {sentences.shape}."
        )
    result = []
    for sentence in sentences:
        if isinstance(sentence, bytes):
            sentence = sentence.decode("utf-8")
        if not isinstance(sentence, str):
            raise TypeError(
                "Expected sentences as strings, got "
                f"{type(sentence).__name__}: {sentence!r:.60}."
            )
        result.append(sentence)
    return result
