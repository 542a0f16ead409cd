"""SavedModel export: every signature answers and matches the Keras model.

On JAX and torch the export goes through the TensorFlow-backend subprocess
(`python -m keras_vae.export`), so this file checks that route there. What
a request to the SavedModel and TensorFlow's `saved_model_cli` do is the
same whichever backend exported it: TensorFlow's run checks those
(`makes_backend_independent_checks`).
"""

import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.tools import saved_model_cli

import keras_vae as kv
from tests.test_case import makes_backend_independent_checks

LATENT = 3
SCORE_SAMPLES = 4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = kv.VAE(
        input_shape=(28, 28, 1), latent_dim=LATENT, hidden_dims=(8, 16), seed=0
    )
    x = np.random.default_rng(0).random((5, 28, 28, 1)).astype("float32")
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=5, verbose=0)  # non-trivial weights
    base = tmp_path_factory.mktemp("export") / "vae"
    path = kv.export_saved_model(
        model, base, version=3, score_num_samples=SCORE_SAMPLES, score_seed=7
    )
    return model, x, path


def numpy(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def test_layout_and_atomic_write(exported):
    model, _, path = exported
    assert os.path.basename(path) == "3"
    assert os.path.exists(os.path.join(path, "saved_model.pb"))
    # Only the version directory remains (no staging leftovers).
    assert os.listdir(os.path.dirname(path)) == ["3"]
    with pytest.raises(FileExistsError, match="already exists"):
        kv.export_saved_model(model, os.path.dirname(path), version=3)


def test_every_signature_matches_keras_model(exported):
    model, x, path = exported
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {
        "serving_default",
        "encode",
        "decode",
        "sample",
        "score",
    }
    images = tf.constant(x)
    out = loaded.signatures["serving_default"](images=images)
    np.testing.assert_allclose(
        out["reconstruction"], model.reconstruct(x), atol=1e-5
    )

    out = loaded.signatures["encode"](images=images)
    z_mean, z_log_var = model.encode(x)
    np.testing.assert_allclose(out["z_mean"], z_mean, atol=1e-5)
    np.testing.assert_allclose(out["z_log_var"], z_log_var, atol=1e-5)

    out = loaded.signatures["decode"](z=tf.constant(z_mean))
    np.testing.assert_allclose(out["images"], model.decode(z_mean), atol=1e-5)

    # `sample` draws N(0, I) statelessly from [seed, 0]: same seed, same images.
    request = dict(num_samples=tf.constant(4), seed=tf.constant(11, tf.int64))
    first = loaded.signatures["sample"](**request)["samples"].numpy()
    again = loaded.signatures["sample"](**request)["samples"].numpy()
    other = loaded.signatures["sample"](
        num_samples=tf.constant(4), seed=tf.constant(12, tf.int64)
    )["samples"].numpy()
    assert first.shape == (4, 28, 28, 1)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3
    noise = tf.random.stateless_normal((4, LATENT), seed=[11, 0]).numpy()
    expected = numpy(model.sample_from_noise(noise))["samples"]
    np.testing.assert_allclose(first, expected, atol=1e-5)

    # `score`: importance-sampled NLL with the export's fixed noise.
    score = loaded.signatures["score"](images=images)["score"].numpy()
    np.testing.assert_array_equal(
        score, loaded.signatures["score"](images=images)["score"].numpy()
    )
    noise = tf.random.stateless_normal((5, SCORE_SAMPLES, LATENT), seed=[7, 1])
    expected = numpy(model.score_from_noise(x, noise.numpy()))["score"]
    np.testing.assert_allclose(score, expected, rtol=1e-5, atol=1e-3)
    # and it estimates the same quantity as the Keras verb.
    keras_score = model.anomaly_score(x, num_samples=64, seed=0)
    np.testing.assert_allclose(score, keras_score, rtol=0.02)


@pytest.mark.slow
def test_saved_model_cli_show_and_run(request, tmp_path):
    # TensorFlow's tool on a SavedModel traced on TensorFlow: made on
    # TensorFlow's run (tests/test_case.py); every run compares its export's
    # signatures with its model in test_every_signature_matches_keras_model.
    if not makes_backend_independent_checks():
        return
    model, x, path = request.getfixturevalue("exported")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    shown = subprocess.run(
        cli + ["show", "--all", "--dir", path],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    for name in ("serving_default", "encode", "decode", "sample", "score"):
        assert f"signature_def['{name}']" in shown
    assert "shape: (-1, 28, 28, 1)" in shown

    np.save(tmp_path / "x.npy", x)
    subprocess.run(
        cli
        + [
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'x.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    reconstruction = np.load(tmp_path / "out" / "reconstruction.npy")
    np.testing.assert_allclose(reconstruction, model.reconstruct(x), atol=1e-5)

    # The other signatures through the function `saved_model_cli run` calls
    # (in this process: one TF start-up per CLI call is too slow for CI).
    z_mean, _ = model.encode(x)
    feeds = {
        "encode": {"images": x},
        "decode": {"z": z_mean},
        "sample": {"num_samples": np.int32(2), "seed": np.int64(5)},
        "score": {"images": x},
    }
    outputs = {}
    for name, feed in feeds.items():
        outdir = tmp_path / name
        saved_model_cli.run_saved_model_with_feed_dict(
            path, "serve", name, feed, str(outdir), overwrite_flag=True
        )
        outputs[name] = {
            f[:-4]: np.load(outdir / f) for f in os.listdir(outdir)
        }
    np.testing.assert_allclose(outputs["encode"]["z_mean"], z_mean, atol=1e-5)
    np.testing.assert_allclose(
        outputs["decode"]["images"], model.decode(z_mean), atol=1e-5
    )
    assert outputs["sample"]["samples"].shape == (2, 28, 28, 1)
    assert outputs["score"]["score"].shape == (5,)
    assert np.all(np.isfinite(outputs["score"]["score"]))


def test_bad_arguments(tmp_path):
    model = kv.VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp")
    with pytest.raises(ValueError, match="version"):
        kv.export_saved_model(model, tmp_path, version=0)
    with pytest.raises(ValueError, match="score_num_samples"):
        kv.export_saved_model(model, tmp_path, score_num_samples=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        kv.export_saved_model(model, tmp_path / "file")
    with pytest.raises(TypeError, match="serving protocol"):
        kv.export_saved_model(kv.GenerativeModel(), tmp_path)
    with pytest.raises(TypeError, match="serving protocol"):
        kv.export_saved_model(
            keras.Sequential([keras.layers.Dense(1)]), tmp_path
        )


@pytest.fixture(scope="module")
def text_exported(tmp_path_factory):
    from tests.models.text_vae_test import tiny, trained

    keras.utils.set_random_seed(0)
    model = trained(tiny(latent_dim=3), epochs=6)
    base = tmp_path_factory.mktemp("export") / "text_vae"
    return model, kv.export_saved_model(model, base, score_num_samples=SCORE_SAMPLES)


def test_text_vae_exports_strings_in_and_out(text_exported):
    """A TextVAE's signatures take and return sentences: the vocabulary
    is in the SavedModel as a lookup table, decoding is a graph loop."""
    from tests.models.text_vae_test import CORPUS

    model, path = text_exported
    loaded = tf.saved_model.load(path)
    # An unknown word, a sentence longer than any seen, an empty one.
    sentences = [CORPUS[0], "the zebra ate the fish", "a dog " * 5, ""]
    feed = tf.constant(sentences)

    out = loaded.signatures["serving_default"](sentences=feed)
    assert [s.decode() for s in out["sentences"].numpy()] == model.reconstruct(sentences)

    out = loaded.signatures["encode"](sentences=feed)
    z_mean, z_log_var = model.encode(sentences)
    np.testing.assert_allclose(out["z_mean"], z_mean, atol=1e-5)
    np.testing.assert_allclose(out["z_log_var"], z_log_var, atol=1e-5)

    z = np.random.default_rng(0).standard_normal((6, 3)).astype("float32")
    out = loaded.signatures["decode"](z=tf.constant(z))
    assert [s.decode() for s in out["sentences"].numpy()] == model.decode(z)

    request = dict(num_samples=tf.constant(5), seed=tf.constant(3, tf.int64))
    first = loaded.signatures["sample"](**request)["sentences"].numpy()
    np.testing.assert_array_equal(first, loaded.signatures["sample"](**request)["sentences"])
    noise = tf.random.stateless_normal((5, 3), seed=[3, 0]).numpy()
    assert [s.decode() for s in first] == model.decode(noise)

    score = loaded.signatures["score"](sentences=feed)["score"].numpy()
    noise = tf.random.stateless_normal((4, SCORE_SAMPLES, 3), seed=[0, 1]).numpy()
    expected = numpy(model.score_from_noise(model.tokenize(sentences), noise))["score"]
    np.testing.assert_allclose(score, expected, rtol=1e-5, atol=1e-4)
    # The same quantity as the Keras verb, up to the estimate's noise.
    np.testing.assert_allclose(
        score, -model.log_likelihood(sentences, num_samples=256), rtol=0.05, atol=0.5
    )


def test_a_model_without_latent_does_not_export(tmp_path):
    from tests.models.text_vae_test import tiny

    with pytest.raises(TypeError, match="no latent"):
        kv.export_saved_model(tiny(kv.LSTMLanguageModel), tmp_path)


# ----------------------------------------------------------------------
# Malformed requests (issue 23, part 1): every signature answers with an
# error, never aborts the process. A request that aborts kills the process
# that sent it, so the requests go out from one subprocess.

WORKER = os.path.join(os.path.dirname(__file__), "serving_requests_worker.py")


@pytest.fixture(scope="module")
def vq_exported(tmp_path_factory):
    from tests.models.vq_vae_test import small_prior, small_vq_vae

    model = small_vq_vae()  # untrained weights answer requests just as well
    model.set_prior(small_prior())
    base = tmp_path_factory.mktemp("export") / "vq_vae"
    return model, kv.export_saved_model(model, base)


@pytest.fixture(scope="module")
def hvae_exported(tmp_path_factory):
    model = kv.HierarchicalVAE(
        input_shape=(8, 8, 1), latent_channels=(2, 3), strides=(4, 2), hidden_channels=4, seed=0
    )
    return model, kv.export_saved_model(model, tmp_path_factory.mktemp("export") / "hvae")


def image_cases(prefix, path, shape, bernoulli):
    """Requests to the image signatures: `(path, signature, feed)` and the
    expected answer, `"error"` or the validity of each example scored."""
    rng = np.random.default_rng(0)
    good = rng.random((2,) + shape).astype("float32")
    nan, inf, big = good.copy(), good.copy(), good.copy()
    nan[1, 0, 0, 0] = np.nan
    inf[1, -1, -1, -1] = np.inf
    big[1] = 255.0
    height, width, channels = shape
    malformed = {
        "no_batch_axis": good[0],
        "rank_5": good[None],
        "wrong_height": np.zeros((2, height + 1, width, channels), "float32"),
        "wrong_width": np.zeros((2, height, width - 1, channels), "float32"),
        "wrong_channels": np.zeros((2, height, width, channels + 2), "float32"),
        "empty_batch": np.zeros((0,) + shape, "float32"),
        "scalar": np.float32(0.5),
        "float64": good.astype("float64"),
        "int32": good.astype("int32"),
    }
    invalid = {"nan": nan, "inf": inf}
    if bernoulli:
        invalid["pixels_255"] = big
    cases, expected = {}, {}
    for signature in ("serving_default", "encode", "score"):
        for name, x in malformed.items():
            key = f"{prefix}/{signature}/{name}"
            cases[key], expected[key] = (path, signature, {"images": x}), "error"
        for name, x in invalid.items():
            key = f"{prefix}/{signature}/{name}"
            cases[key] = (path, signature, {"images": x})
            expected[key] = [True, False] if signature == "score" else "error"
        key = f"{prefix}/{signature}/valid"
        cases[key], expected[key] = (path, signature, {"images": good}), [True, True]
    sample = {
        "zero": (np.int32(0), np.int64(0)),
        "negative": (np.int32(-3), np.int64(0)),
        "num_samples_vector": (np.array([2], "int32"), np.int64(0)),
        "seed_vector": (np.int32(2), np.array([1, 2], "int64")),
    }
    for name, (num, seed) in sample.items():
        key = f"{prefix}/sample/{name}"
        cases[key] = (path, "sample", {"num_samples": num, "seed": seed})
        expected[key] = "error"
    return cases, expected


def test_malformed_requests_answer_with_errors(request, tmp_path):
    # The checks are TensorFlow's, in a SavedModel traced on TensorFlow from
    # every backend: TensorFlow's run makes them (tests/test_case.py); every
    # run checks its own export route above.
    if not makes_backend_independent_checks():
        return
    import pickle

    vae, _, vae_path = request.getfixturevalue("exported")
    vq, vq_path = request.getfixturevalue("vq_exported")
    text, text_path = request.getfixturevalue("text_exported")
    hvae_path = request.getfixturevalue("hvae_exported")[1]
    cases, expected = image_cases("vae", vae_path, (28, 28, 1), bernoulli=True)
    for more in (
        image_cases("vq", vq_path, (8, 8, 1), bernoulli=False),
        image_cases("hvae", hvae_path, (8, 8, 1), bernoulli=True),
    ):
        cases.update(more[0])
        expected.update(more[1])

    z = np.zeros((2, LATENT), "float32")
    z_nan = z.copy()
    z_nan[1, 0] = np.nan
    codes = np.zeros((2,) + vq.grid_shape, "int32")
    decode = {
        "vae/decode/no_batch_axis": (vae_path, {"z": z[0]}),
        "vae/decode/wrong_size": (vae_path, {"z": np.zeros((2, LATENT + 1), "float32")}),
        "vae/decode/empty_batch": (vae_path, {"z": z[:0]}),
        "vae/decode/nan": (vae_path, {"z": z_nan}),
        "vq/decode/no_batch_axis": (vq_path, {"encoding_indices": codes[0]}),
        "vq/decode/negative_code": (vq_path, {"encoding_indices": codes - 1}),
        "vq/decode/code_too_large": (vq_path, {"encoding_indices": codes + vq.num_embeddings}),
        "vq/decode/empty_batch": (vq_path, {"encoding_indices": codes[:0]}),
    }
    for key, (path, feed) in decode.items():
        cases[key], expected[key] = (path, "decode", feed), "error"

    sentences = np.array(["the dog sat", "the <pad> <pad> dog sat"], dtype=object)
    for signature in ("serving_default", "encode", "score"):
        text_cases = {
            "scalar": np.array("the dog sat", dtype=object),
            "rank_2": sentences[None],
            "empty_batch": sentences[:0],
        }
        for name, feed in text_cases.items():
            key = f"text/{signature}/{name}"
            cases[key], expected[key] = (text_path, signature, {"sentences": feed}), "error"
        for word in ("<pad>", "<bos>", "<eos>"):
            key = f"text/{signature}/{word}"
            feed = np.array(["the dog sat", f"the {word} dog sat"], dtype=object)
            cases[key] = (text_path, signature, {"sentences": feed})
            expected[key] = [True, False] if signature == "score" else "error"

    (tmp_path / "cases.pkl").write_bytes(pickle.dumps(cases))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, WORKER, str(tmp_path / "cases.pkl"), str(tmp_path / "results.pkl")],
        env=env,
        capture_output=True,
        text=True,
    )
    # A negative return code is a signal: SIGABRT is -6.
    assert result.returncode == 0, (result.returncode, result.stdout[-2000:], result.stderr[-4000:])
    results = pickle.loads((tmp_path / "results.pkl").read_bytes())
    assert set(results) == set(cases)
    for key, want in expected.items():
        kind, answer = results[key]
        if want == "error":
            assert kind == "error", f"{key}: answered {answer} instead of an error"
            assert "InvalidArgumentError" in answer or "TypeError" in answer or (
                "ValueError" in answer
            ), (key, answer)
            continue
        assert kind == "ok", f"{key}: {answer[:500]}"
        if key.split("/")[1] == "score":
            score = answer["score"]
            assert score.shape == (len(want),), key
            # A valid example gets a finite score, an invalid one +inf.
            np.testing.assert_array_equal(np.isfinite(score), want, err_msg=key)
            assert np.all(score[~np.array(want)] == np.inf), (key, score)
    # Errors name the problem.
    assert "no examples" in results["vae/score/empty_batch"][1]
    assert "not compatible with expected shape" in results["vae/encode/no_batch_axis"][1]
    assert "[0, 1]" in results["vae/serving_default/pixels_255"][1]
    assert "<pad>" in results["text/encode/<pad>"][1]
    assert "must be < 8" in results["vq/decode/code_too_large"][1]
    assert "num_samples" in results["vae/sample/zero"][1]


# Strings whose words Python's str.split() and TF's tf.strings.split (ASCII
# whitespace only) would cut differently without the export's normalization.
TRICKY_SENTENCES = [
    "the\u00a0cat sat",  # non-breaking space
    "the\tcat  sat",  # tab, two spaces
    "  the cat sat \n",  # leading and trailing whitespace
    "the\u2009cat\u3000sat",  # thin space, ideographic space
    "the\x1ccat\x1fsat",  # ASCII separators: whitespace to Python
    "the\u2028cat\u0085sat",  # line separator, next line
    "the\u200bcat sat",  # zero-width space: not whitespace, one word
    "thé cat\u202fsat",  # accented word, narrow no-break space
    "\u00a0",
    "",
    "the <unk> sat",
]


def test_savedmodel_tokenization_matches_vocabulary(text_exported):
    from keras_vae.export import _text_codec

    model, path = text_exported
    vocabulary = model.vocabulary
    to_ids, _, _ = _text_codec(tf, vocabulary)
    np.testing.assert_array_equal(
        to_ids(tf.constant(TRICKY_SENTENCES)).numpy(), vocabulary.tokenize(TRICKY_SENTENCES)
    )
    assert vocabulary.tokenize(["the\u00a0cat"])[0, 1] != vocabulary.unk_id
    # Through the SavedModel: the same codes as the Python model.
    out = tf.saved_model.load(path).signatures["encode"](sentences=tf.constant(TRICKY_SENTENCES))
    z_mean, _ = model.encode(TRICKY_SENTENCES)
    np.testing.assert_allclose(out["z_mean"], z_mean, atol=1e-5)


# ----------------------------------------------------------------------
# The REST requests and replies documented in docs/serving.md (issue 23,
# part 9): each request is fed to the exported signature and the outputs
# are turned into the reply TF Serving sends, by the rule of its
# tensorflow_serving/util/json_tensor.cc (MakeColumnarFormatJsonFromTensors,
# MakeRowFormatJsonFromTensors): one output -> its value without the name.

DOCS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "serving.md")
CURL = re.compile(r"/v1/models/(\w+):predict \\\n\s+-d '([^']*)'\n# -> (.*)\n")


def documented_json(text):
    """The JSON of the docs, with the `...` that shorten values removed."""
    return json.loads(re.sub(r"\.\.\.", "", re.sub(r",\s*\.\.\.", "", text)))


def tf_serving_reply(outputs, row_format):
    """The JSON body TF Serving answers for these signature outputs."""
    values = {name: np.asarray(v) for name, v in outputs.items()}
    if not row_format:
        if len(values) == 1:
            return {"outputs": next(iter(values.values())).tolist()}
        return {"outputs": {name: v.tolist() for name, v in values.items()}}
    (batch,) = {len(v) for v in values.values()}  # one batch size, or an error
    if len(values) == 1:
        return {"predictions": [item.tolist() for item in next(iter(values.values()))]}
    return {"predictions": [{n: v[i].tolist() for n, v in values.items()} for i in range(batch)]}


def depth(value):
    return 1 + depth(value[0]) if isinstance(value, list) and value else int(
        isinstance(value, list)
    )


def same_structure(documented, real):
    """Keys and nesting agree; an empty documented list (`[...]`) stands
    for a list of values."""
    if isinstance(documented, dict):
        return isinstance(real, dict) and documented.keys() == real.keys() and all(
            same_structure(documented[k], real[k]) for k in documented
        )
    if isinstance(documented, list):
        if not isinstance(real, list) or not real:
            return False
        if not documented:
            return not isinstance(real[0], (list, dict))
        return same_structure(documented[0], real[0])
    return isinstance(documented, str) == isinstance(real, (str, bytes))


def feed_from_request(body, specs):
    """The signature's inputs for a documented request: its values where
    they are scalars or strings, zeros of the right shape where the docs
    shorten an image or latent with `...`."""
    row_format = "instances" in body
    if row_format:
        instances = body["instances"]
        if isinstance(instances[0], dict):
            columns = {name: [item[name] for item in instances] for name in instances[0]}
        else:
            (name,) = specs
            columns = {name: instances}
    else:
        columns = body["inputs"]
        if not isinstance(columns, dict):
            (name,) = specs
            columns = {name: columns}
    feed = {}
    for name, value in columns.items():
        spec = specs[name]
        assert depth(value) == spec.shape.rank, (name, value, spec)
        if spec.dtype == tf.string:
            feed[name] = tf.constant(value)
        elif spec.shape.rank == 0:
            feed[name] = tf.constant(value, spec.dtype)
        else:
            shape = [len(value)] + spec.shape.as_list()[1:]
            feed[name] = tf.zeros(shape, spec.dtype)
    return feed, row_format


def test_documented_rest_requests_match_the_export(exported, text_exported):
    with open(DOCS, encoding="utf-8") as f:
        requests = CURL.findall(f.read())
    paths = {"vae": exported[2], "text_vae": text_exported[1]}
    assert len(requests) >= 8 and {model for model, _, _ in requests} == set(paths)
    loaded = {model: tf.saved_model.load(path) for model, path in paths.items()}
    for model, request, reply in requests:
        body, documented = documented_json(request), documented_json(reply)
        signature = loaded[model].signatures[body.get("signature_name", "serving_default")]
        feed, row_format = feed_from_request(body, signature.structured_input_signature[1])
        real = tf_serving_reply(signature(**feed), row_format)
        assert same_structure(documented, real), (request, reply, str(real)[:300])
        if row_format:  # one prediction per instance, in the docs too
            assert len(documented["predictions"]) == len(body["instances"]), request
    # The rule itself: a single-output signature's name is dropped.
    assert tf_serving_reply({"score": [1.0, 2.0]}, row_format=False) == {"outputs": [1.0, 2.0]}
    assert tf_serving_reply({"a": [1.0], "b": [[2.0]]}, row_format=True) == {
        "predictions": [{"a": 1.0, "b": [2.0]}]
    }


def test_screen_inputs_tensor_on_this_backend():
    """The models' validity rules (`screen_inputs_tensor`, keras.ops) on
    the test's own backend: what the served `score` gives +inf."""
    from tests.models.text_vae_test import tiny

    vae = kv.VAE(input_shape=(2, 2, 1), latent_dim=2, architecture="mlp", hidden_dims=(4,))
    x = np.full((5, 2, 2, 1), 0.5, "float32")
    x[1, 0, 0, 0], x[2, 1, 1, 0], x[3, 0, 1, 0], x[4, 1, 0, 0] = np.nan, np.inf, 255.0, -0.1
    valid, cleaned = (keras.ops.convert_to_numpy(t) for t in vae.screen_inputs_tensor(x))
    np.testing.assert_array_equal(valid, [True, False, False, False, False])
    np.testing.assert_array_equal(cleaned[1:], 0.0)
    np.testing.assert_array_equal(cleaned[0], x[0])
    gaussian = kv.VAE(
        input_shape=(2, 2, 1), latent_dim=2, likelihood="gaussian", architecture="mlp"
    )
    valid, _ = gaussian.screen_inputs_tensor(x)  # any finite value is valid
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(valid), [1, 0, 0, 1, 1])

    rows = {
        (1, 4, 5, 2, 0): True,
        (1, 2, 0, 0, 0): True,  # the empty sentence
        (1, 3, 2, 0, 0): True,  # <unk> is a word
        (1, 4, 0, 5, 2): False,  # <pad> as a word
        (1, 4, 1, 2, 0): False,  # <bos> as a word
        (4, 5, 2, 0, 0): False,  # no <bos>
        (1, 4, 5, 6, 7): False,  # no <eos>
        (1, 4, 2, 5, 0): False,  # a word after <eos>
        (1, 2, 2, 0, 0): False,  # <eos> after <eos>
        (1, 99, 2, 0, 0): False,  # outside the vocabulary
        (1, -1, 2, 0, 0): False,
    }
    ids = np.array(list(rows), "int32")
    valid, cleaned = tiny().screen_inputs_tensor(ids)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(valid), list(rows.values()))
    cleaned = keras.ops.convert_to_numpy(cleaned)
    np.testing.assert_array_equal(cleaned[:3], ids[:3])
    np.testing.assert_array_equal(cleaned[3:], np.tile([1, 2, 0, 0, 0], (len(rows) - 3, 1)))
