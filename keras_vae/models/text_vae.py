import keras
import numpy as np
from keras import layers, ops

from keras_vae import losses, samplers
from keras_vae.layers.sampling import Sampling
from keras_vae.models.generative_model import check_count
from keras_vae.models.lstm_language_model import LSTMLanguageModel


@keras.saving.register_keras_serializable(package="keras_vae")
class TextVAE(LSTMLanguageModel):
    """LSTM variational autoencoder for sentences (Bowman et al. 2016).

    Strings in, strings out. An LSTM encoder reads `<bos> w1 .. wn <eos>`
    (padding masked) and gives a diagonal Gaussian `q(z|x)`; an LSTM
    decoder (`keras_vae.layers.TextDecoder`) gets `z` as its initial state
    and at every step, and predicts `w1 .. wn <eos>`. The vocabulary
    (`keras_vae.layers.Vocabulary`) is part of the model, so a `.keras`
    file or preset maps strings to strings on every backend.

    It is an `LSTMLanguageModel` (embeddings, LSTM, softmax) with an
    encoder and a latent code on top: the same data handling, training
    step and evaluation code, and `initialize_from_language_model` starts
    its decoder from a trained language model.

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
        # Set before the base class builds the decoder, which reads z.
        self.latent_dim = int(latent_dim)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.kl_warmup_start = float(kl_warmup_start)
        self.free_bits = float(free_bits)
        if self.latent_dim < 1:
            raise ValueError(f"`latent_dim` must be >= 1, got {self.latent_dim}.")
        if self.kl_warmup_steps < 0 or self.free_bits < 0:
            raise ValueError("`kl_warmup_steps` and `free_bits` must be >= 0.")
        if not 0.0 <= self.kl_warmup_start <= 1.0:
            raise ValueError(f"`kl_warmup_start` must be in [0, 1], got {self.kl_warmup_start}.")
        super().__init__(
            vocabulary,
            embedding_dim=embedding_dim,
            hidden_dim=hidden_dim,
            word_dropout=word_dropout,
            embedding_dropout=embedding_dropout,
            output_dropout=output_dropout,
            tie_embeddings=tie_embeddings,
            max_length=max_length,
            seed=seed,
            **kwargs,
        )
        self.encoder = self._build_encoder()
        self.sampling = Sampling(seed=seed, name="sampling")

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
        z = keras.Input((self.latent_dim,), name="z")
        outputs = self._text_decoder(self.latent_dim)([token_ids, z])
        return keras.Model([token_ids, z], outputs, name="decoder")

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
        if not isinstance(language_model, LSTMLanguageModel) or isinstance(
            language_model, TextVAE
        ):
            raise TypeError(
                "`language_model` must be an LSTMLanguageModel (a model without "
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

    def compute_loss_terms(self, x, training=False):
        step = self.advance_step(training)
        token_ids = ops.cast(x, "int32")
        z_mean, z_log_var = self.encoder(token_ids, training=training)
        z = self.sampling([z_mean, z_log_var])
        log_probs = self.decoder([token_ids, z], training=training)
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
        z_mean, z_log_var = self.encoder(token_ids, training=training)
        z = self.sampling([z_mean, z_log_var])
        return {
            "token_log_probs": self.decoder([token_ids, z], training=training),
            "z_mean": z_mean,
            "z_log_var": z_log_var,
            "z": z,
        }

    # ------------------------------------------------------------------
    # Public verbs: strings in, NumPy or strings out.

    def encode(self, sentences, batch_size=256):
        """Posterior parameters `(z_mean, z_log_var)` of each sentence."""
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
            decoding: a `keras_vae.samplers.Sampler`, or `"greedy"` (most
                likely word at each step), `"sample"` (draws from the
                softmax at `temperature`) or `"beam"` (beam search for the
                most likely sentence, width `beam_width`). Defaults to
                `"greedy"`.
            temperature: float > 0. Softmax temperature of `"sample"`.
            beam_width: int. Hypotheses kept by `"beam"`. Defaults to `5`.
            seed: int or `None`. Seed of `"sample"`; NumPy draws the words,
                so a seed gives the same sentences on every backend. (A
                `RandomSampler` passed as `decoding` draws from its own.)
            max_length: int. Most words per sentence. Defaults to the
                model's `max_length`.
            batch_size: int. Sentences decoded at once. Defaults to `256`.

        Returns:
            A list of `n` str.
        """
        z = self.check_latent_batch(z, self.latent_dim)
        sampler = self._sampler(decoding, temperature, beam_width, seed)
        # Row -1 (the padding of short batches) decodes z = 0.
        padded = np.concatenate([z, np.zeros((1, self.latent_dim), "float32")])
        return self._generate(
            len(z), lambda rows: self._latent_state(padded[rows]), sampler, max_length, batch_size
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
        gives the same sentences on every backend. `decoding` is as in
        `decode`; `**kw` are `decode`'s other options.
        """
        num_samples = check_count("num_samples", num_samples)
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((num_samples, self.latent_dim)).astype("float32")
        return self.decode(z, decoding=decoding, temperature=temperature, seed=rng, **kw)

    def interpolate(self, sentence_a, sentence_b, steps=5, decoding="greedy", **kw):
        """Homotopy between two sentences (Bowman et al. 2016, Table 8).

        Decodes `z = (1 - t) z_a + t z_b` for `steps` evenly spaced `t` in
        `[0, 1]`, `z_a`, `z_b` the posterior means.

        Returns:
            A list of `steps` str, from `sentence_a`'s end to `sentence_b`'s.
        """
        steps = check_count("steps", steps)
        if steps < 2:
            raise ValueError(f"`steps` must be >= 2, got {steps}.")
        z_mean, _ = self.encode([sentence_a, sentence_b])
        t = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
        z = (1.0 - t) * z_mean[0] + t * z_mean[1]
        return self.decode(z, decoding=decoding, **kw)

    # ------------------------------------------------------------------
    # Decoding: the samplers drive `decoding_step` (keras.ops).

    def _latent_state(self, z):
        """The decoding state of latents `z`: the LSTM's `[h0, c0]`, and
        `z` itself, which the decoder reads at every step."""
        z = ops.cast(ops.convert_to_tensor(z), "float32")
        hidden, cell = self.text_decoder.initial_state(z, ops.shape(z)[0])
        return [hidden, cell, z]

    def decoding_step(self, tokens, state):
        """See `LSTMLanguageModel.decoding_step`; the state is `[h, c, z]`."""
        hidden, cell, z = state
        log_probs, (hidden, cell) = self.text_decoder.step(tokens, [hidden, cell], z)
        return self._banned(log_probs), [hidden, cell, z]

    def greedy_decode_tensor(self, z):
        """Greedy decoding of latents `z` in `keras.ops`
        (`keras_vae.samplers.GreedySampler`: a `while_loop` that stops when
        every sentence has ended or after `max_length` words, so it traces
        into a graph).

        Returns int32 token ids of shape `(batch, max_length + 1)`: the
        words, `<eos>`, then `<pad>` (no `<bos>`), as `detokenize` reads
        them. `decode(z, decoding="greedy")` runs the same sampler.
        """
        return self._run_sampler(samplers.GreedySampler(), self._latent_state(z), self.max_length)

    # ------------------------------------------------------------------
    # Serving protocol (keras_vae.export): token ids in and out, in
    # keras.ops. The export adds the vocabulary's string <-> id mapping
    # around it, so the SavedModel takes and returns sentences.

    def serving_spec(self, score_num_samples=1):
        """See `GenerativeModel.serving_spec`. Inputs are token id rows
        (`tokenize`); the extra `"vocabulary"` entry asks the export to
        take and return strings. `sample` decodes `z ~ N(0, I)` greedily."""
        return {
            "inputs": ("token_ids", (None,), "int32"),
            "codes": ("z", (self.latent_dim,), "float32"),
            "sample_noise": ((self.latent_dim,), "normal"),
            "score_noise": ((int(score_num_samples), self.latent_dim), "normal"),
            "vocabulary": self.vocabulary,
            "valid_inputs": "sentences without <pad>, <bos> or <eos> as a word",
        }

    def screen_inputs_tensor(self, inputs):
        """See `GenerativeModel.screen_inputs_tensor`. A valid row is what
        `tokenize` writes: `<bos>`, words (any id but `<pad>`, `<bos>` and
        `<eos>`; `<unk>` is a word), `<eos>`, then only `<pad>`. A sentence
        with `<pad>` as a word would otherwise be cut short (and score as
        more likely); invalid rows become `<bos> <eos>`."""
        v = self.vocabulary
        ids = ops.cast(inputs, "int32")
        in_range = ops.all(ops.logical_and(ids >= 0, ids < v.size), axis=1)
        is_eos = ops.cast(ops.equal(ids, v.eos_id), "int32")
        seen_eos = ops.cumsum(is_eos, axis=1)
        before = ops.equal(seen_eos, 0)  # <bos> and the words
        after = ops.greater(seen_eos - is_eos, 0)  # past the first <eos>
        position = ops.arange(ops.shape(ids)[1])[None, :]
        special = ops.logical_or(
            ops.equal(ids, v.pad_id),
            ops.logical_or(ops.equal(ids, v.bos_id), ops.equal(ids, v.eos_id)),
        )
        word_ok = ops.logical_or(ops.logical_not(special), ops.equal(position, 0))
        ok = ops.where(before, word_ok, ops.where(after, ops.equal(ids, v.pad_id), True))
        valid = in_range
        for rule in (
            ops.all(ok, axis=1),
            ops.equal(ids[:, 0], v.bos_id),
            ops.any(ops.equal(is_eos, 1), axis=1),
        ):
            valid = ops.logical_and(valid, rule)
        empty = ops.where(
            ops.equal(position, 0), v.bos_id, ops.where(ops.equal(position, 1), v.eos_id, v.pad_id)
        )
        return valid, ops.where(valid[:, None], ids, ops.cast(empty, "int32"))

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
        z = losses.reparameterize(z_mean[:, None], z_log_var[:, None], noise=noise)
        log_px_z = ops.sum(
            self.decoder(
                [ops.repeat(token_ids, num_samples, axis=0), ops.reshape(z, (-1, self.latent_dim))]
            ),
            axis=1,
        )
        log_px_z = ops.reshape(log_px_z, (-1, num_samples))
        return {"score": losses.negative_bound(log_px_z, z, z_mean, z_log_var)}

    # ------------------------------------------------------------------
    # Likelihoods.

    def elbo(self, sentences, num_samples=1, seed=0, batch_size=64):
        """Per-sentence ELBO in nats: `E_q[log p(x|z)] - KL`, `num_samples`
        draws of `z` (drawn by NumPy from `seed`)."""
        num_samples = check_count("num_samples", num_samples)
        check_count("batch_size", batch_size)
        rng = np.random.default_rng(seed)

        def batch_elbo(token_ids, _):
            z_mean, z_log_var = (
                np.asarray(a, dtype="float32") for a in self.encoder.predict_on_batch(token_ids)
            )
            kl = ops.sum(losses.gaussian_kl(z_mean, z_log_var), axis=-1)
            total = 0.0
            for _ in range(num_samples):
                eps = rng.standard_normal(z_mean.shape).astype("float32")
                z = losses.reparameterize(z_mean, z_log_var, noise=ops.convert_to_tensor(eps))
                log_px_z = self.decoder.predict_on_batch([token_ids, ops.convert_to_numpy(z)])
                total = total + np.sum(log_px_z, axis=1)
            return total / num_samples - ops.convert_to_numpy(kl)

        return self._map_sorted(sentences, batch_size, batch_elbo)

    def log_likelihood(self, sentences, num_samples=500, seed=0, batch_size=16, max_decode=256):
        """Importance-sampled `log p(x)` in nats, one value per sentence.

        `log mean_k p(x|z_k) p(z_k) / q(z_k|x)` with `z_k ~ q(z|x)` (Burda
        et al. 2016), which tends to `log p(x)` as `num_samples` grows; the
        text VAE literature uses 500 (He et al. 2019). The noise is drawn
        by NumPy from `seed`, so the estimate is the same on every backend.
        Divide the negated total by `num_tokens(sentences).sum()` and
        exponentiate for the per-word perplexity
        (`keras_vae.metrics.perplexity`).

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
        num_samples = check_count("num_samples", num_samples)
        batch_size = check_count("batch_size", batch_size)
        max_decode = check_count("max_decode", max_decode)
        rng = np.random.default_rng(seed)
        batch_size = min(batch_size, max_decode)

        def batch_log_likelihood(token_ids, _):
            z_mean, z_log_var = (
                np.asarray(a, dtype="float32") for a in self.encoder.predict_on_batch(token_ids)
            )
            batch = len(token_ids)
            per_chunk = max(1, int(max_decode) // batch)
            log_weights = []
            for done in range(0, num_samples, per_chunk):
                k = min(per_chunk, num_samples - done)
                eps = rng.standard_normal((k, batch, self.latent_dim)).astype("float32")
                z = losses.reparameterize(z_mean, z_log_var, noise=ops.convert_to_tensor(eps))
                log_px_z = self.decoder.predict_on_batch(
                    [np.tile(token_ids, (k, 1)), ops.convert_to_numpy(z).reshape(k * batch, -1)]
                )
                log_weights.append(
                    losses.importance_log_weights(
                        ops.reshape(ops.sum(log_px_z, axis=1), (k, batch)),
                        losses.standard_normal_log_prob(z),
                        losses.diagonal_gaussian_log_prob(z, z_mean, z_log_var),
                    )
                )
            log_px = losses.importance_sampled_log_likelihood(
                ops.concatenate(log_weights, axis=0), axis=0
            )
            return ops.convert_to_numpy(log_px).astype("float64")

        return self._map_sorted(sentences, batch_size, batch_log_likelihood)

    def get_config(self):
        return {
            **super().get_config(),
            "latent_dim": self.latent_dim,
            "kl_warmup_steps": self.kl_warmup_steps,
            "kl_warmup_start": self.kl_warmup_start,
            "free_bits": self.free_bits,
        }
