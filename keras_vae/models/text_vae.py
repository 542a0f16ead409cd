import keras
import numpy as np
from keras import layers, ops

from keras_vae import losses
from keras_vae.layers.sampling import Sampling
from keras_vae.layers.text_decoder import TextDecoder
from keras_vae.layers.vocabulary import Vocabulary
from keras_vae.models.generative_model import GenerativeModel

DECODINGS = ("greedy", "sample", "beam")
LOG_2PI = float(np.log(2.0 * np.pi))


def _logsumexp(values, axis):
    peak = np.max(values, axis=axis, keepdims=True)
    total = np.log(np.sum(np.exp(values - peak), axis=axis, keepdims=True))
    return np.squeeze(peak + total, axis=axis)


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
class TextVAE(GenerativeModel):
    """LSTM variational autoencoder for sentences (Bowman et al. 2016).

    Strings in, strings out. An LSTM encoder reads `<bos> w1 .. wn <eos>`
    (padding masked) and gives a diagonal Gaussian `q(z|x)`; an LSTM
    decoder (`keras_vae.layers.TextDecoder`) gets `z` as its initial state
    and at every step, and predicts `w1 .. wn <eos>`. The vocabulary
    (`keras_vae.layers.Vocabulary`) is part of the model, so a `.keras`
    file or preset maps strings to strings on every backend.

    `fit` maximizes the ELBO `E_q[log p(x|z)] - KL(q(z|x) || N(0, I))` in
    nats per sentence. Three settings fight posterior collapse (the decoder
    ignoring `z`, `KL -> 0`):

    - KL annealing: the KL weight grows linearly from `kl_warmup_start` to
      1 over `kl_warmup_steps` optimizer steps (Bowman et al. 2016); the
      step count lives in the model (`steps_trained`), so the schedule
      runs inside jit-compiled steps and resumes with the model;
    - free bits: the batch-mean KL of each latent dimension is floored at
      `free_bits` nats in the objective (Kingma et al. 2016), so the
      optimizer gains nothing from pushing a dimension below it;
    - word dropout: decoder inputs replaced by `<unk>` at random.

    The reported `kl_loss` is always the true KL; `kl_weight` logs the
    annealing schedule. The objective `loss` includes both.

    Args:
        vocabulary: a `Vocabulary`, or a list of words (see
            `Vocabulary.from_sentences`).
        latent_dim: int. Size of `z`. Defaults to `32`.
        embedding_dim: int. Word embedding size (encoder and decoder).
            Defaults to `256`.
        hidden_dim: int. LSTM units (encoder and decoder). Defaults to
            `256`.
        word_dropout: float. Decoder word dropout rate. Defaults to `0.0`.
        embedding_dropout: float. Dropout on decoder input embeddings.
            Defaults to `0.0`.
        output_dropout: float. Dropout on decoder LSTM outputs. Defaults to
            `0.0`.
        tie_embeddings: bool. The decoder's softmax reuses its word
            embeddings (see `TextDecoder`); needs `embedding_dim ==
            hidden_dim`. Defaults to `False`.
        kl_warmup_steps: int. Length of the KL annealing; `0` disables it.
            Defaults to `0`.
        kl_warmup_start: float. KL weight at step 0 of the annealing.
            Defaults to `0.0`.
        free_bits: float. Free nats per latent dimension. Defaults to
            `0.0`.
        max_length: int. The longest sentence, in words, that `fit`
            accepts and that decoding produces. Defaults to `100`.
        seed: int or `None`. Seed of the latent sampling and dropouts.
            Defaults to `None`.
        **kwargs: Base model keyword arguments (`name`, `dtype`).

    Example:

    >>> from keras_vae.layers import Vocabulary
    >>> corpus = ["the cat sat", "the dog ran", "a cat ran"] * 4
    >>> vocabulary = Vocabulary.from_sentences(corpus)
    >>> model = TextVAE(vocabulary, latent_dim=2, embedding_dim=8,
    ...                 hidden_dim=8, seed=0)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(corpus, epochs=1, batch_size=4, verbose=0)
    >>> sorted(history.history)
    ['kl_loss', 'kl_weight', 'loss', 'reconstruction_loss']
    >>> len(model.reconstruct(["the cat ran"]))
    1
    >>> model.log_likelihood(["the cat ran"], num_samples=8).shape
    (1,)
    """

    loss_term_names = ("loss", "reconstruction_loss", "kl_loss", "kl_weight")

    def __init__(
        self,
        vocabulary,
        latent_dim=32,
        embedding_dim=256,
        hidden_dim=256,
        word_dropout=0.0,
        embedding_dropout=0.0,
        output_dropout=0.0,
        tie_embeddings=False,
        kl_warmup_steps=0,
        kl_warmup_start=0.0,
        free_bits=0.0,
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
        self.latent_dim = int(latent_dim)
        self.embedding_dim = int(embedding_dim)
        self.hidden_dim = int(hidden_dim)
        self.word_dropout = float(word_dropout)
        self.embedding_dropout = float(embedding_dropout)
        self.output_dropout = float(output_dropout)
        self.tie_embeddings = bool(tie_embeddings)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.kl_warmup_start = float(kl_warmup_start)
        self.free_bits = float(free_bits)
        self.max_length = int(max_length)
        self.seed = seed
        self._check_arguments()

        self.encoder = self._build_encoder() if self.latent_dim else None
        self.decoder = self._build_decoder()
        self.sampling = None
        if self.latent_dim:
            self.sampling = Sampling(seed=seed, name="sampling")
        self.built = True

    def _check_arguments(self):
        minimum = 0 if self._allows_no_latent() else 1
        if self.latent_dim < minimum:
            raise ValueError(f"`latent_dim` must be >= {minimum}, got {self.latent_dim}.")
        if self.kl_warmup_steps < 0 or self.free_bits < 0:
            raise ValueError("`kl_warmup_steps` and `free_bits` must be >= 0.")
        if not 0.0 <= self.kl_warmup_start <= 1.0:
            raise ValueError(f"`kl_warmup_start` must be in [0, 1], got {self.kl_warmup_start}.")
        if self.max_length < 1:
            raise ValueError(f"`max_length` must be >= 1, got {self.max_length}.")

    def _allows_no_latent(self):
        return False

    def _build_encoder(self):
        token_ids = keras.Input((None,), dtype="int32", name="token_ids")
        embedded = layers.Embedding(
            self.vocabulary.size,
            self.embedding_dim,
            mask_zero=True,
            name="embedding",
        )(token_ids)
        features = layers.LSTM(self.hidden_dim, name="lstm")(embedded)
        z_mean = layers.Dense(self.latent_dim, name="z_mean")(features)
        z_log_var = layers.Dense(self.latent_dim, name="z_log_var")(features)
        return keras.Model(token_ids, [z_mean, z_log_var], name="encoder")

    def _build_decoder(self):
        token_ids = keras.Input((None,), dtype="int32", name="token_ids")
        inputs = [token_ids]
        if self.latent_dim:
            inputs.append(keras.Input((self.latent_dim,), name="z"))
        layer = TextDecoder(
            self.vocabulary.size,
            embedding_dim=self.embedding_dim,
            hidden_dim=self.hidden_dim,
            latent_dim=self.latent_dim,
            word_dropout=self.word_dropout,
            embedding_dropout=self.embedding_dropout,
            output_dropout=self.output_dropout,
            tie_embeddings=self.tie_embeddings,
            pad_id=self.vocabulary.pad_id,
            unk_id=self.vocabulary.unk_id,
            # Its dropouts use seed + 1 and + 2, its word dropout seed + 3:
            # streams from one seed would be correlated with the sampling's.
            seed=None if self.seed is None else self.seed + 1,
            name="text_decoder",
        )
        outputs = layer(inputs if self.latent_dim else token_ids)
        return keras.Model(inputs, outputs, name="decoder")

    @property
    def text_decoder(self):
        """The `TextDecoder` layer inside `decoder` (used to generate)."""
        return self.decoder.get_layer("text_decoder")

    def initialize_from_language_model(self, language_model):
        """Starts the decoder (and the encoder's embedding) from a trained
        `LSTMLanguageModel`.

        The decoder gets the language model's embedding, LSTM and softmax
        weights; the weights that read `z` (the LSTM kernel's rows for `z`
        and the initial-state layer) are set to zero, so right after this
        call the decoder assigns every sentence the language model's
        probabilities whatever `z` is, and training teaches it to use `z`.
        The encoder's embedding is copied too; the rest of the encoder keeps
        its random initialization. Call it before `fit` (a run resumed from
        a checkpoint overwrites these weights with the checkpoint's).

        Args:
            language_model: an `LSTMLanguageModel` with the same vocabulary,
                `embedding_dim`, `hidden_dim` and `tie_embeddings`.

        Example:

        >>> from keras_vae.layers import Vocabulary
        >>> from keras_vae.models import LSTMLanguageModel
        >>> vocabulary = Vocabulary.from_sentences(["the cat sat", "a dog ran"])
        >>> lm = LSTMLanguageModel(vocabulary, embedding_dim=8, hidden_dim=8)
        >>> vae = TextVAE(vocabulary, latent_dim=2, embedding_dim=8, hidden_dim=8)
        >>> vae.initialize_from_language_model(lm)
        >>> ids = vae.tokenize(["the dog sat"])
        >>> z = np.ones((1, 2), "float32")
        >>> with_z = vae.decoder.predict_on_batch([ids, z])
        >>> bool(np.allclose(with_z, lm.decoder.predict_on_batch(ids), atol=1e-6))
        True
        """
        self._require_latent("initialize from a language model")
        if getattr(language_model, "latent_dim", None) != 0:
            raise TypeError(
                "`language_model` must be an LSTMLanguageModel (a TextVAE without "
                f"latent); got {type(language_model).__name__}."
            )
        for name in ("embedding_dim", "hidden_dim", "tie_embeddings"):
            if getattr(language_model, name) != getattr(self, name):
                raise ValueError(
                    f"The language model's {name} is {getattr(language_model, name)}, "
                    f"this model's is {getattr(self, name)}: they must match."
                )
        if list(language_model.vocabulary.tokens) != list(self.vocabulary.tokens):
            raise ValueError(
                "The language model's vocabulary differs from this model's "
                f"({language_model.vocabulary.size} and {self.vocabulary.size} "
                "words): they must be the same list, in the same order."
            )
        source, target = language_model.text_decoder, self.text_decoder
        embedding = source.embedding.embeddings.numpy()
        target.embedding.embeddings.assign(embedding)
        self.encoder.get_layer("embedding").embeddings.assign(embedding)
        kernel = source.lstm.cell.kernel.numpy()
        target.lstm.cell.kernel.assign(
            np.concatenate([kernel, np.zeros((self.latent_dim, kernel.shape[1]), kernel.dtype)])
        )
        target.lstm.cell.recurrent_kernel.assign(source.lstm.cell.recurrent_kernel.numpy())
        target.lstm.cell.bias.assign(source.lstm.cell.bias.numpy())
        if self.tie_embeddings:
            target.output_bias.assign(source.output_bias.numpy())
        else:
            target.output_layer.kernel.assign(source.output_layer.kernel.numpy())
            target.output_layer.bias.assign(source.output_layer.bias.numpy())
        # c0 = W z + b = 0 and h0 = tanh(c0) = 0: the language model's state.
        for variable in target.initial_cell.weights:
            variable.assign(np.zeros(variable.shape, variable.dtype))

    # ------------------------------------------------------------------
    # Math (keras.ops only; used by the train step).

    def kl_weight(self, step):
        """The annealed KL weight at optimizer step `step` (a tensor)."""
        if self.kl_warmup_steps == 0:
            return ops.ones((), dtype="float32")
        start = self.kl_warmup_start
        progress = (step + 1.0) / self.kl_warmup_steps
        return ops.minimum(1.0, start + (1.0 - start) * progress)

    def kl_penalty(self, kl_per_dim, step):
        """The KL part of the objective: free bits, then the annealing."""
        if self.free_bits > 0:
            kl_per_dim = ops.maximum(kl_per_dim, self.free_bits)
        return ops.sum(kl_per_dim) * self.kl_weight(step)

    def _decode_log_probs(self, token_ids, z, training=False):
        """Per-token `log p(x_t | x_<t, z)`, shape `(batch, length - 1)`."""
        if self.latent_dim:
            return self.decoder([token_ids, z], training=training)
        return self.decoder(token_ids, training=training)

    def compute_loss_terms(self, x, training=False):
        step = self.advance_step(training)
        token_ids = ops.cast(x, "int32")
        if not self.latent_dim:
            log_probs = self._decode_log_probs(token_ids, None, training)
            return {"loss": -ops.mean(ops.sum(log_probs, axis=1))}
        z_mean, z_log_var = self.encoder(token_ids, training=training)
        z = self.sampling([z_mean, z_log_var])
        log_probs = self._decode_log_probs(token_ids, z, training)
        reconstruction_loss = -ops.mean(ops.sum(log_probs, axis=1))
        kl_per_dim = ops.mean(losses.gaussian_kl(z_mean, z_log_var), axis=0)
        return {
            "loss": reconstruction_loss + self.kl_penalty(kl_per_dim, step),
            "reconstruction_loss": reconstruction_loss,
            "kl_loss": ops.sum(kl_per_dim),
            "kl_weight": self.kl_weight(step),
        }

    def call(self, inputs, training=None):
        token_ids = ops.cast(inputs, "int32")
        if not self.latent_dim:
            return {"token_log_probs": self._decode_log_probs(token_ids, None)}
        z_mean, z_log_var = self.encoder(token_ids, training=training)
        z = self.sampling([z_mean, z_log_var])
        return {
            "token_log_probs": self._decode_log_probs(token_ids, z, training),
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "z": z,
        }

    # ------------------------------------------------------------------
    # Strings <-> token ids, input checks.

    def tokenize(self, sentences, max_length=None, truncate=False):
        """Token id rows of `sentences` (see `Vocabulary.tokenize`)."""
        return self.vocabulary.tokenize(sentences, max_length, truncate)

    def detokenize(self, token_ids):
        """Sentences of token id rows (see `Vocabulary.detokenize`)."""
        return self.vocabulary.detokenize(token_ids)

    def validate_inputs(self, x):
        x = np.asarray(x)
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(
                "TextVAE takes sentences (a list of str) or token ids of shape "
                f"(batch, length) and integer dtype; got shape {x.shape} and "
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

    def _require_latent(self, verb):
        if not self.latent_dim:
            raise ValueError(f"{type(self).__name__} has no latent to {verb}.")

    # ------------------------------------------------------------------
    # Public verbs: strings in, NumPy or strings out.

    def encode(self, sentences, batch_size=256):
        """Posterior parameters `(z_mean, z_log_var)` of each sentence."""
        self._require_latent("encode")
        outputs = self._map_sorted(
            sentences,
            batch_size,
            lambda ids, _: np.concatenate(
                [np.asarray(a) for a in self.encoder.predict_on_batch(ids)],
                axis=-1,
            ),
        )
        return (
            outputs[:, : self.latent_dim].astype("float32"),
            outputs[:, self.latent_dim :].astype("float32"),
        )

    def decode(
        self,
        z,
        decoding="greedy",
        temperature=1.0,
        beam_width=5,
        seed=None,
        max_length=None,
        batch_size=256,
    ):
        """Sentences generated from latents `z` of shape `(n, latent_dim)`.

        Args:
            z: array `(n, latent_dim)`.
            decoding: `"greedy"` (most likely word at each step),
                `"sample"` (draws from the softmax at `temperature`) or
                `"beam"` (beam search for the most likely sentence, width
                `beam_width`). Defaults to `"greedy"`.
            temperature: float > 0. Softmax temperature of `"sample"`.
            beam_width: int. Hypotheses kept by `"beam"`. Defaults to `5`.
            seed: int or `None`. Seed of `"sample"`; NumPy draws the words,
                so a seed gives the same sentences on every backend.
            max_length: int. Most words per sentence. Defaults to the
                model's `max_length`.

        Returns:
            A list of `n` str.
        """
        self._require_latent("decode")
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"Expected latents of shape (n, {self.latent_dim}), got {z.shape}.")
        return self._generate(
            z,
            len(z),
            decoding,
            temperature,
            beam_width,
            seed,
            max_length,
            batch_size,
        )

    def reconstruct(self, sentences, decoding="greedy", batch_size=256, **kw):
        """Decodes the posterior mean of each sentence; returns str.

        `**kw` are `decode`'s options (`temperature`, `beam_width`, `seed`,
        `max_length`).
        """
        z_mean, _ = self.encode(sentences, batch_size=batch_size)
        return self.decode(z_mean, decoding=decoding, batch_size=batch_size, **kw)

    def sample(self, num_samples, seed=None, temperature=1.0, decoding="sample", **kw):
        """`num_samples` sentences from the prior: `z ~ N(0, I)`, decoded.

        The latents and words are drawn by NumPy from `seed`, so a seed
        gives the same sentences on every backend. `**kw` are `decode`'s
        other options.
        """
        rng = np.random.default_rng(seed)
        num_samples = int(num_samples)
        if not self.latent_dim:
            return self._generate(
                None,
                num_samples,
                decoding,
                temperature,
                kw.get("beam_width", 5),
                rng,
                kw.get("max_length"),
                kw.get("batch_size", 256),
            )
        z = rng.standard_normal((num_samples, self.latent_dim)).astype("float32")
        return self.decode(z, decoding=decoding, temperature=temperature, seed=rng, **kw)

    def interpolate(self, sentence_a, sentence_b, steps=5, decoding="greedy", **kw):
        """Homotopy between two sentences (Bowman et al. 2016, Table 8).

        Decodes `z = (1 - t) z_a + t z_b` for `steps` evenly spaced `t` in
        `[0, 1]`, `z_a`, `z_b` the posterior means.

        Returns:
            A list of `steps` str, from `sentence_a`'s end to `sentence_b`'s.
        """
        steps = int(steps)
        if steps < 2:
            raise ValueError(f"`steps` must be >= 2, got {steps}.")
        z_mean, _ = self.encode([sentence_a, sentence_b])
        t = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
        z = (1.0 - t) * z_mean[0] + t * z_mean[1]
        return self.decode(z, decoding=decoding, **kw)

    # ------------------------------------------------------------------
    # Generation (NumPy loop over decoder steps).

    def _generate(
        self,
        z,
        num,
        decoding,
        temperature,
        beam_width,
        seed,
        max_length,
        batch_size,
    ):
        if decoding not in DECODINGS:
            raise ValueError(f"`decoding` must be one of {DECODINGS}, got {decoding!r}.")
        temperature = float(temperature)
        if not temperature > 0:
            raise ValueError(f"`temperature` must be > 0, got {temperature}.")
        beam_width = int(beam_width)
        if beam_width < 1:
            raise ValueError(f"`beam_width` must be >= 1, got {beam_width}.")
        max_length = self.max_length if max_length is None else int(max_length)
        rng = seed if isinstance(seed, np.random.Generator) else (np.random.default_rng(seed))
        sentences = []
        for start in range(0, num, int(batch_size)):
            count = min(int(batch_size), num - start)
            # Fill short batches up to a multiple of 8 rows (few shapes).
            rows = _padded_rows(count, batch_size)
            zb = None
            if z is not None:
                zb = np.zeros((rows, self.latent_dim), dtype="float32")
                zb[:count] = z[start : start + count]
            if decoding == "beam":
                ids = self._beam_search(zb, rows, beam_width, max_length)
            else:
                ids = self._sample_or_greedy(zb, rows, decoding, temperature, rng, max_length)
            sentences.extend(self.detokenize(ids[:count]))
        return sentences

    def _step(self, tokens, state, z):
        log_probs, state = self.text_decoder.step(
            ops.convert_to_tensor(tokens.astype("int32")),
            [ops.convert_to_tensor(s) for s in state],
            None if z is None else ops.convert_to_tensor(z),
        )
        log_probs = ops.convert_to_numpy(log_probs).astype("float64")
        # Never generate <pad> or <bos>.
        log_probs[:, [self.vocabulary.pad_id, self.vocabulary.bos_id]] = -np.inf
        return log_probs, [ops.convert_to_numpy(s) for s in state]

    def _initial_state(self, z, count):
        state = self.text_decoder.initial_state(
            None if z is None else ops.convert_to_tensor(z), count
        )
        return [ops.convert_to_numpy(s) for s in state]

    def _sample_or_greedy(self, z, count, decoding, temperature, rng, max_length):
        eos, pad = self.vocabulary.eos_id, self.vocabulary.pad_id
        state = self._initial_state(z, count)
        tokens = np.full((count,), self.vocabulary.bos_id)
        output = np.full((count, max_length + 1), pad, dtype="int64")
        done = np.zeros((count,), dtype=bool)
        for t in range(max_length):
            log_probs, state = self._step(tokens, state, z)
            if decoding == "greedy":
                tokens = np.argmax(log_probs, axis=-1)
            else:  # Gumbel-max: a draw from softmax(log_probs / T).
                gumbel = -np.log(-np.log(rng.uniform(size=log_probs.shape)))
                tokens = np.argmax(log_probs / temperature + gumbel, axis=-1)
            tokens = np.where(done, eos, tokens)
            output[:, t] = np.where(done, pad, tokens)
            done |= tokens == eos
            if done.all():
                break
        return output

    def _beam_search(self, z, count, width, max_length):
        """Beam search for `argmax_x log p(x|z)` (no length penalty)."""
        eos, vocab = self.vocabulary.eos_id, self.vocabulary.size
        z_beams = None if z is None else np.repeat(z, width, axis=0)
        state = self._initial_state(z_beams, count * width)
        tokens = np.full((count * width,), self.vocabulary.bos_id)
        scores = np.full((count, width), -np.inf)
        scores[:, 0] = 0.0  # One live hypothesis to start with.
        histories = np.zeros((count, width, 0), dtype="int64")
        finished = [[] for _ in range(count)]
        for t in range(max_length + 1):
            log_probs, state = self._step(tokens, state, z_beams)
            if t == max_length:  # Out of room: only <eos> may follow.
                log_probs[:, np.arange(vocab) != eos] = -np.inf
            total = scores[:, :, None] + log_probs.reshape(count, width, vocab)
            total = total.reshape(count, width * vocab)
            candidates = np.argsort(-total, axis=1)[:, : 2 * width]
            new_scores = np.full((count, width), -np.inf)
            origins = np.zeros((count, width), dtype="int64")
            new_tokens = np.full((count, width), eos, dtype="int64")
            for row in range(count):
                kept = 0
                for flat in candidates[row]:
                    score = total[row, flat]
                    if not np.isfinite(score) or kept == width:
                        break
                    beam, token = divmod(int(flat), vocab)
                    if token == eos:
                        if len(finished[row]) < width:
                            finished[row].append((score, histories[row, beam].tolist()))
                        continue
                    new_scores[row, kept] = score
                    origins[row, kept] = beam
                    new_tokens[row, kept] = token
                    kept += 1
                # Scores only fall: stop a row once a finished sentence
                # beats every live hypothesis, or the beam is full.
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
        output = np.full((count, max_length + 1), self.vocabulary.pad_id)
        for row in range(count):
            best = max(finished[row], key=lambda item: item[0], default=None)
            words = best[1] if best else histories[row, int(np.argmax(scores[row]))]
            words = list(words)[:max_length]
            output[row, : len(words)] = words
            output[row, len(words)] = eos
        return output

    # ------------------------------------------------------------------
    # Serving protocol (keras_vae.export): token ids in and out, in
    # keras.ops. The export adds the vocabulary's string <-> id mapping
    # around it, so the SavedModel takes and returns sentences.

    def serving_spec(self, score_num_samples=1):
        """See `GenerativeModel.serving_spec`. Inputs are token id rows
        (`tokenize`); the extra `"vocabulary"` entry asks the export to
        take and return strings. `sample` decodes `z ~ N(0, I)` greedily."""
        if not self.latent_dim:
            raise NotImplementedError(
                f"{type(self).__name__} has no latent: it has no encode, "
                "decode or sample signatures to export."
            )
        return {
            "inputs": ("token_ids", (None,), "int32"),
            "codes": ("z", (self.latent_dim,), "float32"),
            "sample_noise": ((self.latent_dim,), "normal"),
            "score_noise": ((int(score_num_samples), self.latent_dim), "normal"),
            "vocabulary": self.vocabulary,
        }

    def encode_tensor(self, inputs):
        z_mean, z_log_var = self.encoder(ops.cast(inputs, "int32"), training=False)
        return {"z_mean": z_mean, "z_log_var": z_log_var}

    def decode_tensor(self, codes):
        return {"token_ids": self.greedy_decode_tensor(codes)}

    def reconstruct_tensor(self, inputs):
        return self.decode_tensor(self.encode_tensor(inputs)["z_mean"])

    def sample_from_noise(self, noise):
        return self.decode_tensor(noise)

    def score_from_noise(self, inputs, noise):
        """Negative ELBO (`noise` of shape `(batch, 1, latent_dim)`) or
        negative IWAE bound (`(batch, k, latent_dim)`, `k > 1`) in nats per
        sentence."""
        token_ids = ops.cast(inputs, "int32")
        z_mean, z_log_var = self.encoder(token_ids, training=False)
        noise = ops.cast(noise, "float32")
        num_samples = noise.shape[1]
        z = z_mean[:, None] + ops.exp(0.5 * z_log_var)[:, None] * noise
        log_px_z = ops.sum(
            self._decode_log_probs(
                ops.repeat(token_ids, num_samples, axis=0),
                ops.reshape(z, (-1, self.latent_dim)),
            ),
            axis=1,
        )
        log_px_z = ops.reshape(log_px_z, (-1, num_samples))
        return {"score": losses.negative_bound(log_px_z, z, z_mean, z_log_var)}

    def greedy_decode_tensor(self, z):
        """Greedy decoding of latents `z` in `keras.ops` (a `while_loop`
        that stops when every sentence has ended or after `max_length`
        words, so it traces into a graph).

        Returns int32 token ids of shape `(batch, max_length + 1)`: the
        words, `<eos>`, then `<pad>` (no `<bos>`), as `detokenize` reads
        them. Gives the same words as `decode(z, decoding="greedy")`.
        """
        vocabulary, decoder = self.vocabulary, self.text_decoder
        eos, pad = vocabulary.eos_id, vocabulary.pad_id
        z = ops.cast(z, "float32")
        batch = ops.shape(z)[0]
        banned = np.zeros((vocabulary.size,), dtype="float32")
        banned[[pad, vocabulary.bos_id]] = -np.inf  # never generated
        banned = ops.convert_to_tensor(banned)
        columns = ops.arange(self.max_length + 1, dtype="int32")[None, :]

        def running(t, tokens, hidden, cell, done, output):
            return ops.logical_and(t < self.max_length, ops.logical_not(ops.all(done)))

        def step(t, tokens, hidden, cell, done, output):
            log_probs, (hidden, cell) = decoder.step(tokens, [hidden, cell], z)
            tokens = ops.cast(ops.argmax(log_probs + banned, axis=-1), "int32")
            tokens = ops.where(done, eos, tokens)
            written = ops.where(done, pad, tokens)
            output = ops.where(columns == t, written[:, None], output)
            done = ops.logical_or(done, ops.equal(tokens, eos))
            return t + 1, tokens, hidden, cell, done, output

        hidden, cell = decoder.initial_state(z, batch)
        loop_vars = (
            ops.convert_to_tensor(0, dtype="int32"),
            ops.full((batch,), vocabulary.bos_id, dtype="int32"),
            hidden,
            cell,
            ops.zeros((batch,), dtype="bool"),
            ops.full((batch, self.max_length + 1), pad, dtype="int32"),
        )
        return ops.while_loop(running, step, loop_vars)[-1]

    # ------------------------------------------------------------------
    # Likelihoods.

    def num_tokens(self, sentences):
        """Predicted tokens per sentence: its words plus `<eos>`."""
        return self.vocabulary.lengths(self._sentence_list(sentences)) + 1

    def elbo(self, sentences, num_samples=1, seed=0, batch_size=64):
        """Per-sentence ELBO in nats: `E_q[log p(x|z)] - KL`, `num_samples`
        draws of `z` (drawn by NumPy from `seed`)."""
        self._require_latent("compute an ELBO for")
        rng = np.random.default_rng(seed)
        num_samples = int(num_samples)

        def batch_elbo(token_ids, _):
            z_mean, z_log_var = (np.asarray(a) for a in self.encoder.predict_on_batch(token_ids))
            kl = 0.5 * np.sum(np.exp(z_log_var) + z_mean**2 - 1.0 - z_log_var, axis=-1)
            total = 0.0
            for _ in range(num_samples):
                eps = rng.standard_normal(z_mean.shape).astype("float32")
                z = z_mean + np.exp(0.5 * z_log_var) * eps
                total = total + np.sum(self.decoder.predict_on_batch([token_ids, z]), axis=1)
            return total / num_samples - kl

        return self._map_sorted(sentences, batch_size, batch_elbo)

    def log_likelihood(self, sentences, num_samples=500, seed=0, batch_size=16, max_decode=256):
        """Importance-sampled `log p(x)` in nats, one value per sentence.

        `log mean_k p(x|z_k) p(z_k) / q(z_k|x)` with `z_k ~ q(z|x)` (Burda
        et al. 2016), which tends to `log p(x)` as `num_samples` grows; the
        text VAE literature uses 500 (He et al. 2019). Exact for a model
        without latent. The noise is drawn by NumPy from `seed`, so the
        estimate is the same on every backend. Divide the negated total by
        `num_tokens(sentences).sum()` and exponentiate for the per-word
        perplexity (`keras_vae.metrics.perplexity`).

        Args:
            sentences: list of str.
            num_samples: int. Importance samples per sentence. Defaults to
                `500`.
            seed: int. Defaults to `0`.
            batch_size: int. Sentences encoded at once. Defaults to `16`.
            max_decode: int. Largest number of sentences decoded in one
                call (memory: `max_decode * length * vocabulary` floats).
                Defaults to `256`.

        Returns:
            float64 NumPy array of shape `(n,)`.
        """
        num_samples = int(num_samples)
        if num_samples < 1:
            raise ValueError(f"`num_samples` must be >= 1, got {num_samples}.")
        if not self.latent_dim:
            return self._map_sorted(
                sentences,
                max_decode,
                lambda ids, _: np.sum(self.decoder.predict_on_batch(ids), axis=1).astype("float64"),
            )
        rng = np.random.default_rng(seed)
        batch_size = max(1, min(int(batch_size), int(max_decode)))

        def batch_log_likelihood(token_ids, _):
            z_mean, z_log_var = (
                np.asarray(a, dtype="float32") for a in self.encoder.predict_on_batch(token_ids)
            )
            batch = len(token_ids)
            per_chunk = max(1, int(max_decode) // batch)
            log_weights = []
            for done in range(0, num_samples, per_chunk):
                k = min(per_chunk, num_samples - done)
                eps = rng.standard_normal((k, batch, self.latent_dim))
                z = (z_mean + np.exp(0.5 * z_log_var) * eps).astype("float32")
                log_px_z = np.sum(
                    self.decoder.predict_on_batch(
                        [np.tile(token_ids, (k, 1)), z.reshape(k * batch, -1)]
                    ),
                    axis=1,
                ).reshape(k, batch)
                z64 = z.astype("float64")
                log_pz = -0.5 * np.sum(LOG_2PI + z64**2, axis=-1)
                log_qz = -0.5 * np.sum(LOG_2PI + z_log_var + eps**2, axis=-1)
                log_weights.append(log_px_z + log_pz - log_qz)
            log_weights = np.concatenate(log_weights, axis=0)
            return _logsumexp(log_weights, axis=0) - np.log(num_samples)

        return self._map_sorted(sentences, batch_size, batch_log_likelihood)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": list(self.vocabulary.tokens),
            "latent_dim": self.latent_dim,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "word_dropout": self.word_dropout,
            "embedding_dropout": self.embedding_dropout,
            "output_dropout": self.output_dropout,
            "tie_embeddings": self.tie_embeddings,
            "kl_warmup_steps": self.kl_warmup_steps,
            "kl_warmup_start": self.kl_warmup_start,
            "free_bits": self.free_bits,
            "max_length": self.max_length,
            "seed": self.seed,
        }
