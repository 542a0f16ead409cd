import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_vae.models import VAE, GenerativeModel


class StepCounter(keras.layers.Layer):
    """Counts its training calls in a non-trainable variable."""

    def build(self, input_shape):
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def call(self, x, training=False):
        if training:
            self.count.assign(self.count + 1.0)
        return x


class CountingModel(GenerativeModel):
    loss_term_names = ("loss", "square")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)
        self.counter = StepCounter()
        self.dense.build((None, 3))
        self.counter.build((None, 3))
        self.built = True

    def compute_loss_terms(self, x, training=False):
        self.advance_step(training)
        y = self.dense(self.counter(x, training=training))
        square = ops.mean(ops.square(y - 1.0))
        return {"loss": square, "square": square}


def value(variable):
    return float(ops.convert_to_numpy(variable))


@pytest.mark.parametrize("jit_compile", [True, False])
def test_state_updated_in_step_survives(jit_compile):
    if jit_compile and keras.backend.backend() == "torch":
        jit_compile = "auto"  # torch.compile is not what this test is about
    model = CountingModel()
    model.compile(optimizer="sgd", jit_compile=jit_compile)
    x = np.ones((40, 3), "float32")
    history = model.fit(x, epochs=2, batch_size=10, verbose=0)
    assert value(model.counter.count) == 8
    assert value(model.steps_trained) == 8
    assert set(history.history) == {"loss", "square"}
    assert history.history["loss"][1] < history.history["loss"][0]
    # Evaluation reports the same terms and leaves training state alone.
    logs = model.evaluate(x, batch_size=10, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "square"}
    assert value(model.counter.count) == 8


def input_kinds():
    kinds = ["numpy", "tf_data"]
    if keras.backend.backend() == "torch":
        kinds.append("torch_dataloader")
    return kinds


@pytest.mark.parametrize("kind", input_kinds())
def test_fit_accepts_input_kinds(kind):
    x = (np.random.default_rng(0).random((64, 8, 8, 1)) > 0.5).astype("float32")
    if kind == "tf_data":
        data = tf.data.Dataset.from_tensor_slices(x).batch(16)
    elif kind == "torch_dataloader":
        import torch

        data = torch.utils.data.DataLoader(torch.from_numpy(x), batch_size=16)
    else:
        data = x
    model = VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4,), seed=0)
    model.compile(optimizer="adam")
    kwargs = {"batch_size": 16} if kind == "numpy" else {}
    history = model.fit(
        data,
        validation_data=data if kind != "numpy" else (x,),
        epochs=2,
        verbose=0,
        **kwargs,
    )
    assert set(history.history) == {
        "loss",
        "reconstruction_loss",
        "kl_loss",
        "val_loss",
        "val_reconstruction_loss",
        "val_kl_loss",
    }
    assert value(model.steps_trained) == 8


def test_nan_loss_stops_training_and_restores_weights():
    x = np.random.default_rng(0).random((64, 8, 8, 1)).astype("float32")
    x[40] = np.nan  # hidden from the NumPy check inside a tf.data pipeline
    model = VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4,), seed=0)
    model.compile(optimizer="adam")
    with pytest.raises(FloatingPointError, match="non-finite"):
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(16), epochs=1, verbose=0)
    for weight in model.get_weights():
        assert np.all(np.isfinite(weight))



def targets_and_weights_cases():
    """`(expected error, verb, args, kwargs)` for every way to pass y or w."""
    x = np.ones((8, 3), "float32")
    y = np.zeros((8, 1), "float32")
    w = np.ones((8,), "float32")
    batches = {"batch_size": 4}

    def generator():
        for start in range(0, 8, 4):
            yield x[start : start + 4], y[start : start + 4]

    class Pairs(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return x[4 * index : 4 * index + 4], y[4 * index : 4 * index + 4]

    pairs = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    triples = tf.data.Dataset.from_tensor_slices((x, y, w)).batch(4)
    return [
        ("targets", "fit", (x, y), batches),
        ("targets", "fit", (x,), {"validation_data": (x, y), **batches}),
        ("targets", "evaluate", (x, y), batches),
        ("targets", "fit", (pairs,), {}),
        ("targets", "evaluate", (pairs,), {}),
        ("targets", "fit", (x,), {"validation_data": pairs, **batches}),
        ("targets", "fit", (generator(),), {"steps_per_epoch": 2}),
        ("targets", "fit", (Pairs(),), {}),
        ("targets", "evaluate", (Pairs(),), {}),
        ("sample_weight", "fit", (x,), {"sample_weight": w, **batches}),
        ("sample_weight", "evaluate", (x,), {"sample_weight": w, **batches}),
        ("sample_weight", "fit", (x,), {"class_weight": {0: 1.0}, **batches}),
        ("targets", "fit", (triples,), {}),  # y is refused first
    ]


@pytest.mark.parametrize("expected, verb, args, kwargs", targets_and_weights_cases())
def test_targets_and_sample_weights_raise_instead_of_being_dropped(expected, verb, args, kwargs):
    model = CountingModel()
    model.compile(optimizer="sgd")
    before = model.get_weights()
    with pytest.raises(ValueError, match=expected):
        getattr(model, verb)(*args, verbose=0, **kwargs)
    for after, original in zip(model.get_weights(), before):
        np.testing.assert_array_equal(after, original)
    assert value(model.steps_trained) == 0


def test_conv_vae_trains_on_a_last_batch_of_one_example():
    # 9 images at batch 8: the last batch holds one image. torch's CPU
    # convolution used to fail there ("slow_conv2d: grad_weight must be
    # contiguous", the 1-channel output layer with a batch of one).
    x = (np.random.default_rng(0).random((9, 8, 8, 1)) > 0.5).astype("float32")
    model = VAE(input_shape=(8, 8, 1), latent_dim=2, hidden_dims=(4, 8), seed=0)
    model.compile(optimizer="adam")
    history = model.fit(x, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert np.isfinite(model.evaluate(x[:1], verbose=0, return_dict=True)["loss"])


def mlp_vae():
    return VAE(input_shape=(4,), latent_dim=2, architecture="mlp", hidden_dims=(8,), seed=0)


class Batches(keras.utils.PyDataset):
    def __init__(self, x, batch_size):
        super().__init__()
        self.x, self.batch_size = x, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        return self.x[index * self.batch_size : (index + 1) * self.batch_size]


def as_kind(x, kind):
    """`x` as one whole batch of the input kind `kind`."""
    if kind == "tensor":
        return ops.convert_to_tensor(x)  # this backend's tensor
    if kind == "tf_data":
        return tf.data.Dataset.from_tensor_slices(x).batch(len(x))
    if kind == "tf_data_tuples":
        return tf.data.Dataset.from_tensor_slices((x,)).batch(len(x))
    if kind == "generator":
        return ((x,) for _ in range(1))
    return Batches(x, len(x))


KINDS = ["tensor", "tf_data", "tf_data_tuples", "generator", "py_dataset"]
BAD_INPUTS = [
    (np.zeros((8, 3), "float32"), "shape"),
    (np.full((8, 4), 255.0, "float32"), "\\[0, 1\\]"),
    (np.full((8, 4), np.nan, "float32"), "NaN"),
    (np.zeros((8, 4), "int32"), "dtype int32"),
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_input_kind_is_checked_like_numpy(kind):
    """fit / evaluate / predict refuse a bad tf.data set, generator,
    PyDataset or backend tensor with the NumPy array's message, before a
    weight changes."""
    model = mlp_vae()
    model.compile(optimizer="adam")
    before = model.get_weights()
    good = np.full((8, 4), 0.5, "float32")
    for x, pattern in BAD_INPUTS:
        with pytest.raises(ValueError, match=pattern) as numpy_error:
            model.fit(x, batch_size=8, verbose=0)
        calls = {
            "fit": lambda data: model.fit(data, verbose=0),
            "validation": lambda data: model.fit(
                good, validation_data=data, batch_size=8, verbose=0
            ),
            "evaluate": lambda data: model.evaluate(data, verbose=0),
            "predict": lambda data: model.predict(data, verbose=0),
        }
        for verb, call in calls.items():
            with pytest.raises(ValueError) as error:
                call(as_kind(x, kind))
            assert str(error.value) == str(numpy_error.value), (verb, x.dtype)
    for after, original in zip(model.get_weights(), before):
        np.testing.assert_array_equal(after, original)


def test_the_checked_generator_still_yields_every_batch():
    x = np.random.default_rng(0).random((12, 4)).astype("float32")
    steps = []
    for fit in (VAE.fit, keras.Model.fit):  # checked, and Keras' own
        model = mlp_vae()
        model.compile(optimizer="adam")
        fit(model, ((x[i : i + 4],) for i in range(0, 12, 4)), epochs=1, verbose=0)
        steps.append(value(model.steps_trained))
    assert steps[0] == steps[1] >= 3  # the peeked batch is trained on


def test_eager_verbs_take_backend_tensors_and_check_them():
    model = mlp_vae()
    x = np.random.default_rng(0).random((3, 4)).astype("float32")
    np.testing.assert_allclose(
        model.encode(ops.convert_to_tensor(x))[0], model.encode(x)[0], atol=1e-6
    )
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        model.elbo(ops.convert_to_tensor(x * 255))
    with pytest.raises(ValueError, match="NaN"):
        model.decode(ops.convert_to_tensor(np.full((1, 2), np.nan, "float32")))
