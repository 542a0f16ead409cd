import keras
import numpy as np
import pytest

from keras_vae.layers import TextDecoder
from tests.test_case import assert_config_round_trip


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_reference(decoder, ids, z):
    """Teacher-forced log p(x[t+1] | x[:t+1], z) with NumPy, token by token,
    ignoring padding entirely (each sentence scored up to its <eos>)."""

    def weights(layer):
        return [keras.ops.convert_to_numpy(w) for w in layer.weights]

    (embedding,) = weights(decoder.embedding)
    kernel, recurrent, bias = weights(decoder.lstm.cell)
    if decoder.tie_embeddings:
        out_kernel = embedding.T
        out_bias = keras.ops.convert_to_numpy(decoder.output_bias)
    else:
        out_kernel, out_bias = weights(decoder.output_layer)
    init_kernel, init_bias = weights(decoder.initial_cell)
    units = decoder.hidden_dim
    result = np.zeros(ids[:, 1:].shape)
    for row in range(len(ids)):
        c = z[row] @ init_kernel + init_bias
        h = np.tanh(c)
        length = int(np.argmax(ids[row] == 2))  # position of <eos>
        for t in range(length):
            x = np.concatenate([embedding[ids[row, t]], z[row]])
            gates = x @ kernel + h @ recurrent + bias
            i, f, g, o = (gates[k * units : (k + 1) * units] for k in range(4))
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            logits = h @ out_kernel + out_bias
            log_probs = logits - np.log(np.sum(np.exp(logits)))
            result[row, t] = log_probs[ids[row, t + 1]]
    return result


def test_matches_numpy_reference_and_ignores_padding():
    decoder = TextDecoder(9, embedding_dim=3, hidden_dim=4, latent_dim=2)
    ids = np.array([[1, 4, 5, 6, 2], [1, 7, 2, 0, 0]], "int32")
    z = np.random.default_rng(0).normal(size=(2, 2)).astype("float32")
    log_probs = keras.ops.convert_to_numpy(decoder([ids, z]))
    np.testing.assert_allclose(
        log_probs, numpy_reference(decoder, ids, z), atol=1e-5
    )
    # Extra padding changes nothing: padded targets score exactly 0.
    padded = np.pad(ids, ((0, 0), (0, 3)))
    longer = keras.ops.convert_to_numpy(decoder([padded, z]))
    np.testing.assert_allclose(longer[:, :4], log_probs, atol=1e-6)
    assert np.all(longer[:, 4:] == 0.0)


def test_step_matches_teacher_forcing():
    decoder = TextDecoder(9, embedding_dim=3, hidden_dim=4, latent_dim=2)
    ids = np.array([[1, 4, 5, 2]], "int32")
    z = np.ones((1, 2), "float32")
    expected = keras.ops.convert_to_numpy(decoder([ids, z]))[0]
    state = decoder.initial_state(z, 1)
    for t in range(3):
        log_probs, state = decoder.step(ids[:, t], state, z)
        value = keras.ops.convert_to_numpy(log_probs)[0, ids[0, t + 1]]
        np.testing.assert_allclose(value, expected[t], atol=1e-5)


def test_word_dropout_only_in_training_and_config():
    decoder = TextDecoder(
        9, embedding_dim=3, hidden_dim=4, latent_dim=0, word_dropout=0.5, seed=1
    )
    ids = np.tile(np.array([[1, 4, 5, 6, 7, 8, 2]], "int32"), (8, 1))
    a = keras.ops.convert_to_numpy(decoder(ids))
    np.testing.assert_allclose(a, keras.ops.convert_to_numpy(decoder(ids)))
    b = keras.ops.convert_to_numpy(decoder(ids, training=True))
    assert not np.allclose(a, b)
    np.testing.assert_allclose(a[:, 0], b[:, 0])  # <bos> is never dropped
    assert_config_round_trip(decoder)


def test_tied_embeddings_match_numpy_reference_and_step():
    decoder = TextDecoder(9, embedding_dim=4, hidden_dim=4, latent_dim=2, tie_embeddings=True)
    ids = np.array([[1, 4, 5, 6, 2], [1, 7, 2, 0, 0]], "int32")
    z = np.random.default_rng(0).normal(size=(2, 2)).astype("float32")
    decoder([ids, z])
    decoder.output_bias.assign(np.linspace(-1, 1, 9).astype("float32"))
    log_probs = keras.ops.convert_to_numpy(decoder([ids, z]))
    np.testing.assert_allclose(log_probs, numpy_reference(decoder, ids, z), atol=1e-5)
    state = decoder.initial_state(z[:1], 1)
    for t in range(4):
        step, state = decoder.step(ids[:1, t], state, z[:1])
        value = keras.ops.convert_to_numpy(step)[0, ids[0, t + 1]]
        np.testing.assert_allclose(value, log_probs[0, t], atol=1e-5)
    # One matrix fewer: the softmax reads the embeddings.
    untied = TextDecoder(9, embedding_dim=4, hidden_dim=4, latent_dim=2)
    untied([ids, z])
    assert untied.count_params() - decoder.count_params() == 9 * 4
    assert decoder.output_layer is None
    restored = assert_config_round_trip(decoder)
    assert restored.tie_embeddings


def test_tied_embeddings_need_equal_sizes():
    with pytest.raises(ValueError, match="embedding_dim == hidden_dim"):
        TextDecoder(9, embedding_dim=3, hidden_dim=4, tie_embeddings=True)
