import keras

from keras_vae.models.text_vae import TextVAE


@keras.saving.register_keras_serializable(package="keras_vae")
class LSTMLanguageModel(TextVAE):
    """LSTM language model: the baseline of `TextVAE`, without latent.

    The same decoder as `TextVAE` (`keras_vae.layers.TextDecoder` with
    `latent_dim=0`), the same vocabulary, training step, data handling and
    evaluation code, so its perplexity is directly comparable with the
    VAE's. `log_likelihood` is exact; `sample` draws sentences. The verbs
    that need a latent (`encode`, `decode`, `reconstruct`, `interpolate`,
    `elbo`) raise a `ValueError`.

    Args:
        vocabulary: a `Vocabulary`, or a list of words.
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
        super().__init__(
            vocabulary,
            latent_dim=0,
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

    def _allows_no_latent(self):
        return True

    def get_config(self):
        config = super().get_config()
        for key in (
            "latent_dim",
            "kl_warmup_steps",
            "kl_warmup_start",
            "free_bits",
        ):
            config.pop(key)
        return config
