import numpy as np
import pytest

from keras_vae.layers import Vocabulary
from tests.test_case import assert_config_round_trip


def test_tokenize_detokenize_round_trip():
    vocabulary = Vocabulary.from_sentences(["b a", "a c", "a"])
    assert vocabulary.tokens == ["a", "b", "c"]  # by count, then a-z
    assert vocabulary.id_to_token[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    ids = vocabulary.tokenize(["a b", "c  x <unk>", ""])
    np.testing.assert_array_equal(
        ids,
        [[1, 4, 5, 2, 0], [1, 6, 3, 3, 2], [1, 2, 0, 0, 0]],
    )
    assert ids.dtype == np.int32
    assert vocabulary.detokenize(ids) == ["a b", "c <unk> <unk>", ""]
    np.testing.assert_array_equal(vocabulary.lengths(["a b", ""]), [2, 0])
    mask = np.asarray(vocabulary(ids))
    np.testing.assert_array_equal(mask, ids != 0)


def test_control_tokens_are_not_words():
    """`<pad>`, `<bos>`, `<eos>` in a sentence would cut or pad its row
    early (and make it score as more likely): refused. `<unk>` is a word."""
    vocabulary = Vocabulary(["a", "b"])
    for word in ("<pad>", "<bos>", "<eos>"):
        with pytest.raises(ValueError, match=f"Sentence 1 contains \\['{word}'\\]"):
            vocabulary.tokenize(["a", f"a {word} b"])
    np.testing.assert_array_equal(vocabulary.tokenize(["a <unk>"]), [[1, 4, 3, 2]])
    # Whitespace is Python's: any Unicode space separates words.
    np.testing.assert_array_equal(
        vocabulary.tokenize(["a\u00a0b", "\ta\u3000\u2009b\x1c"]), [[1, 4, 5, 2]] * 2
    )


def test_max_length_and_truncation():
    vocabulary = Vocabulary(["a", "b"])
    assert vocabulary.tokenize(["a"], max_length=3).shape == (1, 5)
    with pytest.raises(ValueError, match="more than max_length=1"):
        vocabulary.tokenize(["a b"], max_length=1)
    np.testing.assert_array_equal(
        vocabulary.tokenize(["a b"], max_length=1, truncate=True), [[1, 4, 2]]
    )


def test_bad_input_names_the_problem():
    vocabulary = Vocabulary(["a"])
    with pytest.raises(TypeError, match="single string"):
        vocabulary.tokenize("a")
    with pytest.raises(TypeError, match="as strings"):
        vocabulary.tokenize([1, 2])
    with pytest.raises(ValueError, match="twice"):
        Vocabulary(["a", "a"])
    with pytest.raises(ValueError, match="whitespace"):
        Vocabulary(["a b"])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        vocabulary.detokenize([[1, 9]])


def test_config_round_trip():
    vocabulary = Vocabulary(["x", "y"], name="vocabulary")
    clone = assert_config_round_trip(vocabulary)
    assert clone.id_to_token == vocabulary.id_to_token
