"""Train and test steps for the TensorFlow backend (`tf.GradientTape`).

The steps also run under a `tf.distribute` strategy (`MirroredStrategy`,
`MultiWorkerMirroredStrategy`, `TPUStrategy`): build and compile the model
inside `strategy.scope()` and call `fit` as usual. Each replica then runs
`train_step` on its slice of the global batch, and the optimizer *sums* the
replicas' gradients. Two things follow, both handled or checked here:

- The objective is divided by the number of replicas before the gradient
  (as Keras' own `compile(loss=...)` path does), so the summed gradient is
  the gradient of the global-batch mean, not `num_replicas` times it. The
  logged terms are not scaled: the loss trackers' variables sum their
  totals and counts over replicas, so logs are global-batch means.
- A variable assigned inside the step (step counters, EMA codebooks) is a
  `MirroredVariable`; with Keras' default `aggregation="none"` each replica
  keeps its own copy, computed from its own data slice, and the copies
  silently diverge. So after each step every floating-point non-trainable
  variable of the model with `aggregation="none"` is set, on every replica,
  to the mean of the replicas' copies: one all-reduce of the model's state,
  the `aggregation="mean"` semantics. Variables created with another
  aggregation are left to it (`"only_first_replica"` for counters and
  anything every replica computes identically, as `steps_trained`);
  integer state (seed generators) advances identically on every replica.
  `replica_mismatches` lists variables whose copies differ.

`fit`, `evaluate` and `predict` run inside `array_pipelines_without_autotune()`:
the `tf.data` pipeline Keras builds from NumPy arrays gets
`autotune.enabled = False`. With tf.data's autotuning on, epochs on the
idle 2-core CPU stalled at one core's speed (exactly 1,234-1,241 images/s,
the process using 1.1-1.4 CPU-seconds a second): 3 of 10 of issue 24's
ARCH and 6 of 6 of the default conv VAE (1,239 images/s against a median
of 1,999 without autotuning), alternated epoch by epoch in one process
(`benchmarks/tf_data_autotune.py`); without it, none of 16 stalled.
`KERAS_VAE_TF_DATA_AUTOTUNE=1` keeps Keras' autotuned
pipeline. Data sets passed as `tf.data.Dataset` keep their own options.

`fori_loop` is `keras.ops.fori_loop` traced into one graph when called
eagerly (the models' sampling loops: an eager TensorFlow loop runs each
step's operations one by one).
"""

import contextlib
import os

import keras
import numpy as np
import tensorflow as tf

from keras_vae.training.inputs import unpack_inputs
from keras_vae.training.narrow_conv import narrow_convs

TF_DATA_AUTOTUNE_ENV = "KERAS_VAE_TF_DATA_AUTOTUNE"


def _num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def _without_autotune(get_tf_dataset):
    """`ArrayDataAdapter.get_tf_dataset` with tf.data's autotuning off."""

    def get_tf_dataset_without_autotune(self):
        options = tf.data.Options()
        options.autotune.enabled = False
        return get_tf_dataset(self).with_options(options)

    get_tf_dataset_without_autotune.keras_vae_original = get_tf_dataset
    return get_tf_dataset_without_autotune


@contextlib.contextmanager
def array_pipelines_without_autotune():
    """Within this context, the `tf.data` pipelines Keras builds from arrays
    run without tf.data's autotuning; restored on exit.

    A no-op with `KERAS_VAE_TF_DATA_AUTOTUNE=1`. The models' `fit`,
    `evaluate` and `predict` run inside it on TensorFlow (see the module's
    docstring for why); nothing outside them sees it.

    Example:

    >>> import numpy as np
    >>> from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
    >>> with array_pipelines_without_autotune():
    ...     dataset = ArrayDataAdapter(np.zeros((4, 2), "float32"), batch_size=2).get_tf_dataset()
    >>> dataset.options().autotune.enabled
    False
    """
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

    original = ArrayDataAdapter.get_tf_dataset
    if os.environ.get(TF_DATA_AUTOTUNE_ENV) == "1" or hasattr(original, "keras_vae_original"):
        yield  # Turned off, or already inside one.
        return
    ArrayDataAdapter.get_tf_dataset = _without_autotune(original)
    try:
        yield
    finally:
        ArrayDataAdapter.get_tf_dataset = original


class Trainer:
    """Mixin with the TensorFlow `train_step` / `test_step` of every model."""

    def fit(self, *args, **kwargs):
        with array_pipelines_without_autotune():
            return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        with array_pipelines_without_autotune():
            return super().evaluate(*args, **kwargs)

    def predict(self, *args, **kwargs):
        with array_pipelines_without_autotune():
            return super().predict(*args, **kwargs)

    def train_step(self, data):
        x = unpack_inputs(data)
        with tf.GradientTape() as tape, narrow_convs():
            terms = self.compute_loss_terms(x, training=True)
            loss = terms["loss"]
            if self.losses:
                loss = loss + tf.add_n(self.losses)
            num_replicas = _num_replicas()
            if num_replicas > 1:
                # The optimizer all-reduces gradients with a sum.
                loss = loss * tf.cast(1.0 / num_replicas, loss.dtype)
            scaled_loss = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        gradients = tape.gradient(scaled_loss, variables)
        self.optimizer.apply(gradients, variables)
        if num_replicas > 1:
            self._synchronize_replica_state()
        return self.update_loss_trackers(terms, x)

    def _synchronize_replica_state(self):
        """Averages the replicas' copies of state assigned in the step."""
        context = tf.distribute.get_replica_context()
        if context is None:  # cross-replica context: nothing per replica
            return
        state = [
            v
            for v in self.non_trainable_variables
            if v.aggregation == "none" and tf.as_dtype(v.dtype).is_floating
        ]
        if not state:
            return
        means = context.all_reduce(
            tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in state]
        )
        for variable, mean in zip(state, means):
            variable.assign(mean)

    def test_step(self, data):
        x = unpack_inputs(data)
        terms = self.compute_loss_terms(x, training=False)
        return self.update_loss_trackers(terms, x)


def replica_mismatches(variables, atol=0.0):
    """Paths of the distributed variables whose per-replica copies differ.

    Call it outside `strategy.run` (e.g. after `fit`). Variables that are
    not mirrored across several devices are ignored.

    Args:
        variables: iterable of Keras variables (e.g. `model.variables`).
        atol: float. Largest absolute difference tolerated.

    Returns:
        A list of `(path, largest_difference)` pairs, empty when every
        variable holds the same value on every replica.

    Example:

    >>> import keras
    >>> replica_mismatches([keras.Variable(1.0)])
    []
    """
    mismatches = []
    for variable in variables:
        value = getattr(variable, "value", variable)
        copies = getattr(value, "values", None)
        if not isinstance(copies, (tuple, list)) or len(copies) < 2:
            continue
        arrays = [np.asarray(copy.numpy(), dtype="float64") for copy in copies]
        worst = max(float(np.max(np.abs(a - arrays[0]), initial=0.0)) for a in arrays)
        if worst > atol:
            mismatches.append((getattr(variable, "path", variable.name), worst))
    return mismatches


def fori_loop(lower, upper, body_fun, init_val):
    """`keras.ops.fori_loop`, run as one graph when called eagerly.

    Eager TensorFlow runs a `fori_loop` as a Python loop, each step's
    operations one by one: `HierarchicalVAE.sample` of the
    `hvae_binarized_mnist` preset (its PixelCNN head draws the 784 pixels
    in turn) took 17.5-21.3 s for 4 images on a 2-core CPU, 1.9 s as one
    graph (`benchmarks/tf_sampling_loops.py`). Called eagerly, the loop is
    traced into a `tf.function` (one `tf.while_loop`) and run there;
    inside a graph (a `tf.function`, an export) it is `keras.ops.fori_loop`
    itself, and so it is on another Keras backend. The body must create no
    variables (the models build theirs when constructed). JAX compiles
    `keras.ops.fori_loop` itself and torch runs its eager operations
    quickly: the models use `keras_vae.training.fori_loop`, which is this
    function on TensorFlow and `keras.ops.fori_loop` elsewhere.

    Example:

    >>> import keras
    >>> total = fori_loop(0, 4, lambda i, s: s + keras.ops.cast(i, "float32"), keras.ops.zeros(()))
    >>> float(total)
    6.0
    """
    if keras.backend.backend() != "tensorflow" or not tf.executing_eagerly():
        return keras.ops.fori_loop(lower, upper, body_fun, init_val)
    # A function of its own per call: the body closes over this call's
    # tensors, and TensorFlow counts retracing per function.
    loop = tf.function(
        lambda init: keras.ops.fori_loop(lower, upper, body_fun, init), autograph=False
    )
    return loop(init_val)
