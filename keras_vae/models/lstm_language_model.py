import keras
import numpy as np
from keras import ops

from keras_vae import samplers
from keras_vae.layers.text_decoder import TextDecoder
from keras_vae.layers.vocabulary import Vocabulary
from keras_vae.models.generative_model import GenerativeModel, check_count


def _padded_rows(count, batch_size):
    """`count` rounded up to a multiple of 8, at most `batch_size`."""
    return max(count, min(int(batch_size), -(-count // 8) * 8))


def _is_sentences(x):
    """True for a list / tuple / 1-D array of str (or bytes)."""
    if isinstance(x, np.ndarray):
        return (
            x.ndim == 1
            and x.dtype.kind in "USO"
            and (x.dtype.kind != "O" or (len(x) and isinstance(x[0], (str, bytes))))
        )
    return isinstance(x, (list, tuple)) and len(x) > 0 and isinstance(x[0], (str, bytes))


@keras.saving.register_keras_serializable(package="keras_vae")
class LSTMLanguageModel(GenerativeModel):
    """LSTM language model for sentences, and the base of `TextVAE`.

    Strings in, strings out. The network is word embeddings, an LSTM and a
    softmax (`keras_vae.layers.TextDecoder`, in `decoder`): it reads
    `<bos> w1 .. wn` and predicts `w1 .. wn <eos>` (padding masked). The
    vocabulary (`keras_vae.layers.Vocabulary`) is part of the model, so a
    `.keras` file or preset maps strings to strings on every backend.
    `fit` minimizes `-log p(x)` in nats per sentence; `log_likelihood` is
    exact; `sample` writes sentences with any decoding strategy of
    `keras_vae.samplers`.

    `TextVAE` extends this class with an encoder and a latent code, and
    keeps its data handling, training and evaluation code, so the two
    perplexities are directly comparable.

    Args:
        vocabulary: a `Vocabulary`, or a list of words (see
            `Vocabulary.from_sentences`).
        embedding_dim: int. Word embedding size. Defaults to `256`.
        hidden_dim: int. LSTM units. Defaults to `256`.
        word_dropout: float. Input word dropout rate. Defaults to `0.0`.
        embedding_dropout: float. Dropout on input embeddings. Defaults
            to `0.0`.
        output_dropout: float. Dropout on LSTM outputs. Defaults to `0.0`.
        tie_embeddings: bool. The softmax reuses the word embeddings (see
            `TextDecoder`); needs `embedding_dim == hidden_dim`. Defaults
            to `False`.
        max_length: int. Longest sentence, in words, accepted by `fit` and
            generated. Defaults to `100`.
        seed: int or `None`. Seed of the dropouts. Defaults to `None`.
        **kwargs: Base model keyword arguments (`name`, `dtype`).

    Example:

    >>> from keras_vae.layers import Vocabulary
    >>> corpus = ["the cat sat", "the dog ran", "a cat ran"] * 4
    >>> model = LSTMLanguageModel(Vocabulary.from_sentences(corpus),
    ...                           embedding_dim=8, hidden_dim=8, seed=0)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(corpus, epochs=1, batch_size=4, verbose=0)
    >>> sorted(history.history)
    ['loss']
    >>> model.log_likelihood(["the cat ran"]).shape
    (1,)
    >>> len(model.sample(2, seed=0, decoding="beam"))
    2
    """

    loss_term_names = ("loss",)

    def __init__(
        self,
        vocabulary,
        embedding_dim=256,
        hidden_dim=256,
        word_dropout=0.0,
        embedding_dropout=0.0,
        output_dropout=0.0,
        tie_embeddings=False,
        max_length=100,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(vocabulary, dict):
            vocabulary = keras.saving.deserialize_keras_object(vocabulary)
        if not isinstance(vocabulary, Vocabulary):
            vocabulary = Vocabulary(vocabulary, name="vocabulary")
        self.vocabulary = vocabulary
        self.embedding_dim = int(embedding_dim)
        self.hidden_dim = int(hidden_dim)
        self.word_dropout = float(word_dropout)
        self.embedding_dropout = float(embedding_dropout)
        self.output_dropout = float(output_dropout)
        self.tie_embeddings = bool(tie_embeddings)
        self.max_length = int(max_length)
        self.seed = seed
        if self.max_length < 1:
            raise ValueError(f"`max_length` must be >= 1, got {self.max_length}.")
        self.decoder = self._build_decoder()
        self.built = True

    def _text_decoder(self, latent_dim=0):
        return TextDecoder(
            self.vocabulary.size,
            embedding_dim=self.embedding_dim,
            hidden_dim=self.hidden_dim,
            latent_dim=latent_dim,
            word_dropout=self.word_dropout,
            embedding_dropout=self.embedding_dropout,
            output_dropout=self.output_dropout,
            tie_embeddings=self.tie_embeddings,
            pad_id=self.vocabulary.pad_id,
            unk_id=self.vocabulary.unk_id,
            # Its dropouts use seed + 1 and + 2, its word dropout seed + 3:
            # streams from one seed would be correlated with a VAE's
            # latent sampling (seed).
            seed=None if self.seed is None else self.seed + 1,
            name="text_decoder",
        )

    def _build_decoder(self):
        token_ids = keras.Input((None,), dtype="int32", name="token_ids")
        return keras.Model(token_ids, self._text_decoder()(token_ids), name="decoder")

    @property
    def text_decoder(self):
        """The `TextDecoder` layer inside `decoder` (used to generate)."""
        return self.decoder.get_layer("text_decoder")

    # ------------------------------------------------------------------
    # Math (keras.ops only; used by the train step).

    def compute_loss_terms(self, x, training=False):
        self.advance_step(training)
        log_probs = self.decoder(ops.cast(x, "int32"), training=training)
        return {"loss": -ops.mean(ops.sum(log_probs, axis=1))}

    def call(self, inputs, training=None):
        return {"token_log_probs": self.decoder(ops.cast(inputs, "int32"), training=training)}

    # ------------------------------------------------------------------
    # Strings <-> token ids, input checks.

    def tokenize(self, sentences, max_length=None, truncate=False):
        """Token id rows of `sentences` (see `Vocabulary.tokenize`)."""
        return self.vocabulary.tokenize(sentences, max_length, truncate)

    def detokenize(self, token_ids):
        """Sentences of token id rows (see `Vocabulary.detokenize`)."""
        return self.vocabulary.detokenize(token_ids)

    def num_tokens(self, sentences):
        """Predicted tokens per sentence: its words plus `<eos>`."""
        return self.vocabulary.lengths(self._sentence_list(sentences)) + 1

    def validate_inputs(self, x):
        x = np.asarray(x)
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(
                f"{type(self).__name__} takes sentences (a list of str) or token ids "
                f"of shape (batch, length) and integer dtype; got shape {x.shape} and "
                f"dtype {x.dtype}. Use model.tokenize(sentences)."
            )
        if x.shape[1] < 2:
            raise ValueError(
                f"Token id rows need at least <bos> and <eos>; got length {x.shape[1]}."
            )
        if x.size and (x.min() < 0 or x.max() >= self.vocabulary.size):
            raise ValueError(
                f"Token ids must be in [0, {self.vocabulary.size}); got values "
                f"in [{x.min()}, {x.max()}]."
            )
        if x.size and np.any(x[:, 0] != self.vocabulary.bos_id):
            raise ValueError(
                "Every token id row must start with <bos> (id "
                f"{self.vocabulary.bos_id}); use model.tokenize(sentences)."
            )

    def _as_token_ids(self, x):
        """Sentences -> ids padded to the longest (at most `max_length`)."""
        if not _is_sentences(x):
            return x
        sentences = self._sentence_list(x)
        longest = int(self.vocabulary.lengths(sentences).max())
        if longest > self.max_length:
            raise ValueError(
                f"A sentence has {longest} words, more than max_length="
                f"{self.max_length}. Shorten or drop long sentences, or build "
                "the model with a larger max_length."
            )
        return self.tokenize(sentences)

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit` that also takes sentences (a list of str).

        Sentences are tokenized and padded to the longest one (at most
        `max_length` words, longer ones raise a `ValueError`);
        `validation_data` may be `(sentences,)` as well.
        """
        validation = kwargs.get("validation_data")
        if isinstance(validation, tuple) and validation:
            kwargs["validation_data"] = (self._as_token_ids(validation[0]),) + tuple(validation[1:])
        elif _is_sentences(validation):
            kwargs["validation_data"] = (self._as_token_ids(validation),)
        return super().fit(self._as_token_ids(x), y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        return super().evaluate(self._as_token_ids(x), y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return super().predict(self._as_token_ids(x), *args, **kwargs)

    def _sentence_list(self, sentences):
        if not _is_sentences(sentences):
            if isinstance(sentences, (list, tuple, np.ndarray)) and not len(sentences):
                raise ValueError("Received an empty list of sentences.")
            raise TypeError(f"Expected a list of sentences (str); got {type(sentences).__name__}.")
        return [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in sentences]

    def _map_sorted(self, sentences, batch_size, fn):
        """Runs `fn(token_ids, rows)` on batches of similar length.

        Sentences are sorted by length and each batch is padded to its
        longest sentence, rounded up to a multiple of 8; a short batch is
        filled up with copies of its first row to a multiple of 8 rows.
        That keeps the number of compiled shapes small, with little
        padding. `fn` returns one array per batch row (extra rows are
        dropped); the results come back in the input order.
        """
        batch_size = check_count("batch_size", batch_size)
        sentences = self._sentence_list(sentences)
        lengths = self.vocabulary.lengths(sentences)
        order = np.argsort(lengths, kind="stable")
        results = [None] * len(sentences)
        for start in range(0, len(order), int(batch_size)):
            rows = order[start : start + int(batch_size)]
            longest = int(lengths[rows].max())
            padded = -(-(longest + 2) // 8) * 8 - 2
            token_ids = self.tokenize([sentences[i] for i in rows], max_length=padded)
            extra = _padded_rows(len(rows), batch_size) - len(rows)
            token_ids = np.concatenate([token_ids, np.repeat(token_ids[:1], extra, axis=0)])
            for i, value in zip(rows, fn(token_ids, rows)):
                results[i] = value
        return np.stack(results)

    # ------------------------------------------------------------------
    # Likelihood and generation.

    def log_likelihood(self, sentences, num_samples=500, seed=0, batch_size=16, max_decode=256):
        """Exact `log p(x)` in nats, one value per sentence.

        Divide the negated total by `num_tokens(sentences).sum()` and
        exponentiate for the per-word perplexity
        (`keras_vae.metrics.perplexity`). Called like `TextVAE`'s
        importance-sampled estimate, so every text model is evaluated by
        the same code.

        Args:
            sentences: list of str.
            num_samples: int >= 1. Unused: the likelihood is exact.
            seed: int. Unused.
            batch_size: int. Unused.
            max_decode: int. Sentences scored at once. Defaults to `256`.

        Returns:
            float64 NumPy array of shape `(n,)`.
        """
        check_count("num_samples", num_samples)
        check_count("batch_size", batch_size)
        max_decode = check_count("max_decode", max_decode)
        return self._map_sorted(
            sentences,
            max_decode,
            lambda ids, _: np.sum(self.decoder.predict_on_batch(ids), axis=1).astype("float64"),
        )

    def sample(self, num_samples, seed=None, temperature=1.0, decoding="sample", **kw):
        """`num_samples` sentences written by the model.

        Args:
            num_samples: int.
            seed: int or `None`. Seed of `"sample"`: NumPy draws the words,
                so a seed gives the same sentences on every backend. (A
                `RandomSampler` passed as `decoding` draws from its own.)
            temperature: float > 0. Softmax temperature of `"sample"`.
            decoding: a `keras_vae.samplers.Sampler`, or `"sample"`,
                `"greedy"` or `"beam"` (see `keras_vae.samplers.get`).
                Defaults to `"sample"`.
            **kw: `beam_width` (of `"beam"`), `max_length`, `batch_size`.

        Returns:
            A list of `num_samples` str.
        """
        num_samples = check_count("num_samples", num_samples)
        sampler = self._sampler(decoding, temperature, kw.pop("beam_width", 5), seed)
        return self._generate(num_samples, self._initial_state, sampler, **kw)

    def _sampler(self, decoding, temperature, beam_width, seed):
        beam_width = check_count("beam_width", beam_width)
        # default_rng returns a Generator as is: one stream per call.
        rng = np.random.default_rng(seed)
        return samplers.get(decoding, temperature=temperature, num_beams=beam_width, seed=rng)

    def _initial_state(self, rows):
        """The decoding state before the first word, for rows `rows`."""
        return self.text_decoder.initial_state(None, len(rows))

    def decoding_step(self, tokens, state):
        """The step function the samplers drive (`keras.ops`): next-word
        log-probabilities (`<pad>` and `<bos>` never generated) and the new
        state, `[h, c]` here."""
        log_probs, state = self.text_decoder.step(tokens, state)
        return self._banned(log_probs), state

    def _banned(self, log_probs):
        banned = np.zeros((self.vocabulary.size,), dtype="float32")
        banned[[self.vocabulary.pad_id, self.vocabulary.bos_id]] = -np.inf
        return log_probs + ops.convert_to_tensor(banned)

    def _run_sampler(self, sampler, state, max_length):
        return sampler(
            self.decoding_step,
            state,
            start_id=self.vocabulary.bos_id,
            end_id=self.vocabulary.eos_id,
            pad_id=self.vocabulary.pad_id,
            max_length=max_length,
        )

    def _generate(self, num, initial_state, sampler, max_length=None, batch_size=256):
        """`num` sentences in batches of `batch_size`; `initial_state(rows)`
        gives the state of the example indices `rows` (a short batch is
        filled up to a multiple of 8 rows with index `-1`)."""
        batch_size = check_count("batch_size", batch_size)
        max_length = check_count("max_length", max_length, allow_none=True)
        max_length = self.max_length if max_length is None else max_length
        sentences = []
        for start in range(0, num, int(batch_size)):
            count = min(int(batch_size), num - start)
            rows = np.arange(start, start + count)
            rows = np.concatenate([rows, np.full(_padded_rows(count, batch_size) - count, -1)])
            ids = self._run_sampler(sampler, initial_state(rows), max_length)
            sentences.extend(self.detokenize(ops.convert_to_numpy(ids)[:count]))
        return sentences

    # ------------------------------------------------------------------

    def serving_spec(self, score_num_samples=1):
        raise NotImplementedError(
            f"{type(self).__name__} has no latent: it has no encode, decode or "
            "sample signatures to export."
        )

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": list(self.vocabulary.tokens),
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "word_dropout": self.word_dropout,
            "embedding_dropout": self.embedding_dropout,
            "output_dropout": self.output_dropout,
            "tie_embeddings": self.tie_embeddings,
            "max_length": self.max_length,
            "seed": self.seed,
        }
