"""Keras's own layer contract for every public layer of `keras_vae.layers`.

`keras.src.testing.TestCase.run_layer_test` is the check Keras runs on its
built-in layers: get_config / from_config and `serialize_keras_object`
round trips, `build` on a shape, a symbolic call (output shapes and dtypes
from `compute_output_shape` / `compute_output_spec`), an eager call, one
compiled `fit` step (the loss is the sum of the outputs) and a call under
the `mixed_float16` dtype policy (output dtypes as the symbolic call
predicts, variables kept in float32). `test_dtype_policies` below does
the same for `float16` and `mixed_bfloat16` on every backend, and for
`mixed_float16` on torch, where Keras skips it without a GPU. Masking: the
layers that take sequences with padding say whether they support Keras
masks (`supports_masking`), and the TransformerBlock's mask is checked to
keep padding out of attention.

To add a layer: give it a `CASES` entry (tiny shapes: this file runs on
every backend). A name in `keras_vae.layers.__all__` without an entry
fails `test_every_public_layer_has_a_case`.
"""

import keras
import numpy as np
import pytest
from keras import ops
from keras.src import testing

from keras_vae import layers

_TOKENS = np.array([[1, 5, 6, 2, 0], [1, 7, 2, 0, 0]], "int32")

# One entry per public layer: the keyword arguments of `run_layer_test`.
CASES = {
    "DepthToSpace": dict(
        init_kwargs={"block_size": 2},
        input_shape=(2, 3, 3, 8),
        expected_output_shape=(2, 6, 6, 2),
        expected_num_trainable_weights=0,
        expected_num_seed_generators=0,
        supports_masking=False,
    ),
    # Without a context (the contract calls the layer on one input);
    # inverse_autoregressive_flow_test.py covers the context.
    "InverseAutoregressiveFlow": dict(
        init_kwargs={"num_steps": 2, "hidden_dims": (4,)},
        input_shape=(2, 3),
        expected_output_shape=((2, 3), (2, 3)),
        expected_num_trainable_weights=8,
        supports_masking=False,
    ),
    "MaskedConv2D": dict(
        init_kwargs={"filters": 3, "kernel_size": 3, "mask_type": "A"},
        input_shape=(2, 4, 4, 2),
        expected_output_shape=(2, 4, 4, 3),
        expected_num_trainable_weights=2,
        supports_masking=False,
    ),
    "MaskedDense": dict(
        init_kwargs={"input_degrees": [1, 2, 3], "output_degrees": [1, 2, 3, 1], "strict": True},
        input_shape=(2, 3),
        expected_output_shape=(2, 4),
        expected_num_trainable_weights=2,
        supports_masking=False,
    ),
    "ResidualBlock": dict(
        init_kwargs={"hidden_dim": 4},
        input_shape=(2, 3, 3, 2),
        expected_output_shape=(2, 3, 3, 2),
        expected_num_trainable_weights=4,
        supports_masking=False,
    ),
    "Sampling": dict(
        init_kwargs={"seed": 1},
        input_shape=((2, 3), (2, 3)),
        expected_output_shape=(2, 3),
        expected_num_trainable_weights=0,
        expected_num_seed_generators=1,
        supports_masking=False,
    ),
    "SubPixelConvTranspose2D": dict(
        init_kwargs={"filters": 2, "activation": "relu"},
        input_shape=(2, 3, 3, 4),
        expected_output_shape=(2, 6, 6, 2),
        expected_num_trainable_weights=2,
        expected_num_seed_generators=0,
        supports_masking=False,
    ),
    # Token ids in, per-token log-likelihoods out; padding is the layer's
    # own `pad_id` (targets at `<pad>` score 0), not a Keras mask.
    "TextDecoder": dict(
        init_kwargs={
            "vocabulary_size": 8,
            "embedding_dim": 4,
            "hidden_dim": 4,
            "latent_dim": 2,
            "word_dropout": 0.25,
            "seed": 1,
        },
        input_data=(_TOKENS, np.zeros((2, 2), "float32")),
        call_kwargs={"training": True},
        expected_output_shape=(2, 4),
        expected_output_dtype="float32",
        supports_masking=False,
    ),
    "TransformerBlock": dict(
        init_kwargs={"num_heads": 2, "mlp_dim": 8, "dropout": 0.1, "seed": 1},
        input_shape=(2, 3, 4),
        expected_output_shape=(2, 3, 4),
        supports_masking=True,
    ),
    # The outputs are a dict (`quantize`, `loss`, `perplexity`, ...):
    # Keras' training check sums the outputs as one tensor, so it cannot
    # run here; vector_quantizer_test.py trains the layer inside a
    # compiled `fit` step on every backend instead.
    "VectorQuantizer": dict(
        init_kwargs={"num_embeddings": 4, "embedding_dim": 2, "seed": 1},
        input_shape=(2, 3, 2),
        expected_output_shape={
            "quantize": (2, 3, 2),
            "loss": (),
            "perplexity": (),
            "encoding_indices": (2, 3),
        },
        expected_num_non_trainable_weights=4,
        run_training_check=False,
        supports_masking=False,
    ),
    # Strings are mapped to ids by `tokenize` / `detokenize` in NumPy,
    # outside any graph (Keras tensors hold no strings on JAX or torch), so
    # the contract covers the layer's graph part: ids in, padding mask out.
    # It has no weights, and its boolean output takes no gradient, so
    # Keras' training step (a sum of the outputs) does not apply.
    "Vocabulary": dict(
        init_kwargs={"tokens": ["a", "b", "c"]},
        input_data=_TOKENS,
        expected_output_shape=(2, 5),
        expected_output_dtype="bool",
        expected_num_trainable_weights=0,
        run_training_check=False,
        supports_masking=False,
    ),
}


class _LayerTestCase(testing.TestCase):
    """Keras' TestCase, used outside unittest's runner for its asserts."""

    __test__ = False  # not a test itself: pytest must not collect it

    def runTest(self):  # unittest wants a test method to exist
        pass


@pytest.fixture
def keras_test_case():
    case = _LayerTestCase()
    case.setUp()
    yield case
    case.doCleanups()


def test_every_public_layer_has_a_case():
    missing = sorted(set(layers.__all__) - set(CASES))
    assert not missing, f"Public layers without a CASES entry: {missing}."
    assert sorted(CASES) == sorted(layers.__all__)


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_layer_test(name, keras_test_case):
    keras_test_case.run_layer_test(getattr(layers, name), **CASES[name])


def _inputs(case):
    if "input_data" in case:
        return case["input_data"]
    shapes = case["input_shape"]
    rng = np.random.default_rng(0)
    if isinstance(shapes[0], (list, tuple)):
        return tuple(rng.standard_normal(s).astype("float32") for s in shapes)
    return rng.standard_normal(shapes).astype("float32")


def _spec(x, dtype):
    if np.issubdtype(np.asarray(x).dtype, np.floating):
        return keras.KerasTensor(np.shape(x), dtype=dtype)
    return keras.KerasTensor(np.shape(x), dtype=str(np.asarray(x).dtype))


# run_layer_test checks mixed_float16 itself, except on torch (no GPU here).
_POLICIES = ["float16", "mixed_bfloat16"] + (
    ["mixed_float16"] if keras.backend.backend() == "torch" else []
)


@pytest.mark.parametrize("policy", _POLICIES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_dtype_policies(name, policy):
    """Outputs have the dtypes the symbolic call predicts, finite values; mixed policies
    keep float variables in float32, `float16` stores them in float16."""
    case = CASES[name]
    layer = getattr(layers, name)(**case["init_kwargs"], dtype=policy)
    assert layer.dtype_policy.name == policy
    x = _inputs(case)
    outputs = layer(x, **case.get("call_kwargs", {}))
    spec_inputs = keras.tree.map_structure(
        lambda t: _spec(t, layer.compute_dtype), x
    )
    specs = layer.compute_output_spec(spec_inputs, **case.get("call_kwargs", {}))
    for tensor, spec in zip(keras.tree.flatten(outputs), keras.tree.flatten(specs)):
        assert keras.backend.standardize_dtype(tensor.dtype) == spec.dtype
        assert tuple(tensor.shape) == tuple(
            d if d is not None else t for d, t in zip(spec.shape, tensor.shape)
        )
        if keras.backend.is_float_dtype(spec.dtype):
            assert np.all(np.isfinite(ops.convert_to_numpy(ops.cast(tensor, "float32"))))
    variable_dtype = "float16" if policy == "float16" else "float32"
    for weight in layer.weights:
        if keras.backend.is_float_dtype(weight.dtype):
            assert keras.backend.standardize_dtype(weight.dtype) == variable_dtype, weight.path


def test_transformer_block_masks_padding():
    """With a padding mask, left-padded sequences give the unpadded outputs."""
    rng = np.random.default_rng(0)
    block = layers.TransformerBlock(num_heads=2, mlp_dim=8, seed=1)
    x = rng.standard_normal((2, 3, 4)).astype("float32")
    padding = rng.standard_normal((2, 2, 4)).astype("float32")
    padded = np.concatenate([padding, x], axis=1)
    mask = np.array([[False, False, True, True, True]] * 2)
    expected = ops.convert_to_numpy(block(x))
    masked = ops.convert_to_numpy(block(padded, mask=mask))
    np.testing.assert_allclose(masked[:, 2:], expected, atol=1e-5)
    assert np.all(np.isfinite(masked))
    unmasked = ops.convert_to_numpy(block(padded))
    assert not np.allclose(unmasked[:, 2:], expected, atol=1e-3)
    # The mask passes on to the next layer unchanged.
    np.testing.assert_array_equal(ops.convert_to_numpy(block.compute_mask(padded, mask)), mask)
    # Keras hands the block the mask of an `Embedding(mask_zero=True)`.
    ids = np.array([[0, 0, 5, 6], [0, 3, 2, 1]], "int32")
    embedded = keras.layers.Embedding(8, 4, mask_zero=True)(ids)
    outputs = ops.convert_to_numpy(block(embedded))
    explicit = ops.convert_to_numpy(block(embedded, mask=ids != 0))
    np.testing.assert_allclose(outputs, explicit, atol=1e-6)
