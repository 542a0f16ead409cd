"""The TensorFlow trainer's input pipelines without tf.data's autotuning
(`keras_vae.training.tensorflow.array_pipelines_without_autotune`), and the
models' loops (`keras_vae.training.fori_loop`) on every backend."""

import keras
import numpy as np
from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

from keras_vae.models import VAE
from keras_vae.training import tensorflow as tf_training

BACKEND = keras.backend.backend()


def autotune_of_array_pipeline():
    adapter = ArrayDataAdapter(np.zeros((6, 2), "float32"), batch_size=4, shuffle=True)
    return adapter.get_tf_dataset().options().autotune.enabled


def test_context_turns_autotune_off_and_restores(monkeypatch):
    monkeypatch.delenv(tf_training.TF_DATA_AUTOTUNE_ENV, raising=False)
    original = ArrayDataAdapter.get_tf_dataset
    assert autotune_of_array_pipeline() is not False  # Keras' default: autotuned
    with tf_training.array_pipelines_without_autotune():
        assert autotune_of_array_pipeline() is False
        with tf_training.array_pipelines_without_autotune():  # nested: unchanged
            assert autotune_of_array_pipeline() is False
        assert autotune_of_array_pipeline() is False
    assert ArrayDataAdapter.get_tf_dataset is original
    assert autotune_of_array_pipeline() is not False


def test_environment_variable_keeps_keras_pipeline(monkeypatch):
    monkeypatch.setenv(tf_training.TF_DATA_AUTOTUNE_ENV, "1")
    with tf_training.array_pipelines_without_autotune():
        assert autotune_of_array_pipeline() is not False


def test_model_methods_build_pipelines_without_autotune(monkeypatch):
    """On TensorFlow, `fit` (with validation), `evaluate` and `predict` of a
    zoo model read NumPy arrays through pipelines without autotuning; the
    other backends' trainers never build a tf.data pipeline from arrays."""
    monkeypatch.delenv(tf_training.TF_DATA_AUTOTUNE_ENV, raising=False)
    built, autotune = [], []
    keras_get = ArrayDataAdapter.get_tf_dataset

    def counting(self):
        built.append(self)
        return keras_get(self)

    real_without_autotune = tf_training._without_autotune

    def recording_without_autotune(get_tf_dataset):
        wrapped = real_without_autotune(get_tf_dataset)

        def get(self):
            dataset = wrapped(self)
            autotune.append(dataset.options().autotune.enabled)
            return dataset

        get.keras_vae_original = get_tf_dataset
        return get

    monkeypatch.setattr(ArrayDataAdapter, "get_tf_dataset", counting)
    monkeypatch.setattr(tf_training, "_without_autotune", recording_without_autotune)
    x = np.random.default_rng(0).random((8, 4, 4, 1)).astype("float32")
    model = VAE(input_shape=(4, 4, 1), latent_dim=2, architecture="mlp", hidden_dims=(8,))
    model.compile(optimizer="adam")
    model.fit(x, validation_data=(x,), epochs=1, batch_size=4, verbose=0)
    model.evaluate(x, batch_size=4, verbose=0)
    model.predict(x, batch_size=4, verbose=0)
    if BACKEND == "tensorflow":
        assert len(built) == 4  # training and validation data, evaluate, predict
        assert autotune == [False] * 4
    else:
        assert built == [] and autotune == []
    assert ArrayDataAdapter.get_tf_dataset is counting  # restored after each call


def test_models_loops_run_the_body_once_per_trace_on_tensorflow_and_jax():
    """`keras_vae.training.fori_loop`: eager TensorFlow would call the body
    once per step, in Python; in one graph (TensorFlow) or one compiled
    loop (JAX) it is traced once. Torch runs it step by step. The result
    is the loop's either way."""
    from keras_vae.training import fori_loop

    calls = []

    def body(i, total):
        calls.append(i)
        return total + keras.ops.cast(i, "float32")

    total = fori_loop(0, 50, body, keras.ops.zeros(()))
    assert float(total) == sum(range(50))
    assert len(calls) == (50 if BACKEND == "torch" else 1)
    # Inside a graph, too (a TensorFlow export traces the models' loops).
    if BACKEND == "tensorflow":
        import tensorflow as tf

        graph_total = tf.function(lambda: fori_loop(0, 5, body, keras.ops.zeros(())))()
        assert float(graph_total) == 10.0
