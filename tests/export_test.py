"""SavedModel export: every signature answers and matches the Keras model.

On JAX and torch the export goes through the TensorFlow-backend subprocess
(`python -m keras_vae.export`), so this file checks that route there.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.tools import saved_model_cli

import keras_vae as kv

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
def test_saved_model_cli_show_and_run(exported, tmp_path):
    model, x, path = exported
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


def test_text_vae_exports_strings_in_and_out(tmp_path):
    """A TextVAE's signatures take and return sentences: the vocabulary
    is in the SavedModel as a lookup table, decoding is a graph loop."""
    from tests.models.text_vae_test import CORPUS, tiny, trained

    keras.utils.set_random_seed(0)
    model = trained(tiny(latent_dim=3), epochs=6)
    path = kv.export_saved_model(model, tmp_path / "text_vae", score_num_samples=SCORE_SAMPLES)
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
