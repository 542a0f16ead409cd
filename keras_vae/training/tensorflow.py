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
  silently diverge. Create such variables with `aggregation="mean"` (moving
  averages of batch statistics: every replica gets the mean of the
  replicas' new values) or `aggregation="only_first_replica"` (counters and
  anything every replica computes identically). `replica_mismatches` finds
  variables whose copies differ.
"""

import numpy as np
import tensorflow as tf
from keras.utils import unpack_x_y_sample_weight


def _num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


class Trainer:
    """Mixin with the TensorFlow `train_step` / `test_step` of every model."""

    def train_step(self, data):
        x, _, _ = unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
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
        return self.update_loss_trackers(terms)

    def test_step(self, data):
        x, _, _ = unpack_x_y_sample_weight(data)
        terms = self.compute_loss_terms(x, training=False)
        return self.update_loss_trackers(terms)


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
        worst = max(
            float(np.max(np.abs(a - arrays[0]), initial=0.0)) for a in arrays
        )
        if worst > atol:
            mismatches.append((getattr(variable, "path", variable.name), worst))
    return mismatches
