"""Length-bucketed batches of sentences for `fit` on every backend."""

import math

import keras
import numpy as np


class TextBatches(keras.utils.PyDataset):
    """Batches of token ids, each padded only to its own longest sentence.

    Sentences are sorted by length and cut into batches of neighbours
    (the order of the batches, and which sentences share one, change every
    epoch when `shuffle=True`), so a batch carries little padding: on PTB
    about 25 tokens per row instead of the 84 of padding everything to the
    longest sentence. Rows are padded to a multiple of `pad_to_multiple`
    ids, which bounds the number of distinct shapes a jit-compiled step
    sees. Masking makes the result independent of the padding. When the
    sentences differ in padded length, the first two batches of every epoch
    do too: Keras' TensorFlow trainer fixes the dimensions those two share.

    Args:
        sentences: list of str.
        tokenize: callable `(list of str, max_length) -> int ids`, usually
            `model.tokenize` (the model's vocabulary).
        batch_size: int. Sentences per batch. Defaults to `32`.
        shuffle: bool. Reshuffle at every epoch. Defaults to `True`.
        seed: int or `None`. Seed of the shuffling: epoch `e`'s batches
            depend on `seed` and `e` only, so a resumed run that sets
            `epoch` gets the batches an uninterrupted one would. Defaults
            to `None`.
        pad_to_multiple: int. Defaults to `8`.
        max_length: int or `None`. Longest sentence in words; longer ones
            raise a `ValueError`. Defaults to `None`.

    Example:

    >>> from keras_vae.layers import Vocabulary
    >>> corpus = ["a b", "a", "b a b a b a b a b a"]
    >>> batches = TextBatches(corpus, Vocabulary(["a", "b"]).tokenize,
    ...                       batch_size=2, shuffle=False)
    >>> [batches[i][0].shape for i in range(len(batches))]
    [(2, 8), (1, 16)]
    """

    def __init__(
        self,
        sentences,
        tokenize,
        batch_size=32,
        shuffle=True,
        seed=None,
        pad_to_multiple=8,
        max_length=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(sentences, str) or not len(sentences):
            raise ValueError("TextBatches needs a non-empty list of sentences.")
        self.sentences = list(sentences)
        self.tokenize = tokenize
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.pad_to_multiple = int(pad_to_multiple)
        self.seed = seed
        self.lengths = np.array([len(s.split()) for s in self.sentences])
        if max_length is not None and self.lengths.max() > max_length:
            raise ValueError(
                f"A sentence has {self.lengths.max()} words, more than "
                f"max_length={max_length}."
            )
        self.epoch = 0  # arranges epoch 0's batches

    @property
    def epoch(self):
        """The epoch whose batches `__getitem__` serves; set it to resume a
        run (epoch `e`'s order depends on `seed` and `e` only)."""
        return self._epoch

    @epoch.setter
    def epoch(self, epoch):
        self._epoch = int(epoch)
        self._arrange()

    def on_epoch_end(self):
        self.epoch += 1

    def _arrange(self):
        if self.shuffle:
            seed = None if self.seed is None else [self.seed, self._epoch]
            rng = np.random.default_rng(seed)
            # Random tie-breaking: equal-length sentences mix across epochs.
            noise = rng.random(len(self.lengths))
            order = np.lexsort((noise, self.lengths))
        else:
            order = np.argsort(self.lengths, kind="stable")
        self.batches = [
            order[i : i + self.batch_size]
            for i in range(0, len(order), self.batch_size)
        ]
        if self.shuffle:
            rng.shuffle(self.batches)
        # Keras' TensorFlow trainer builds its `tf.data` signature from the
        # first two batches and fixes every dimension they share: if both
        # had one length, a longer batch later in the epoch would fail.
        # Bring a batch of another length (if any) to the second place.
        widths = [self._width(rows) for rows in self.batches]
        other = next((i for i, w in enumerate(widths) if w != widths[0]), None)
        if other is not None and widths[1] == widths[0]:
            self.batches[1], self.batches[other] = self.batches[other], self.batches[1]

    def _width(self, rows):
        """Ids per row of the batch of sentences `rows`, padding included."""
        longest = int(self.lengths[rows].max()) + 2
        return -(-longest // self.pad_to_multiple) * self.pad_to_multiple

    def __len__(self):
        return math.ceil(len(self.sentences) / self.batch_size)

    def __getitem__(self, index):
        rows = self.batches[index]
        ids = self.tokenize([self.sentences[i] for i in rows], self._width(rows) - 2)
        return (ids,)
