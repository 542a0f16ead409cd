"""Stateless train and test steps for the JAX backend.

JAX steps are pure functions of the model state: every variable read inside
`compute_loss_terms` is taken from the state passed in (through a
`keras.StatelessScope`), and every variable assigned there (seed generators,
EMA codebooks, step counters) comes back as new non-trainable state. That is
what lets such updates survive `jax.jit`.

Multi-device: the step runs unchanged under `keras.distribution`
(`DataParallel`, `ModelParallel`): Keras shards the batch and the
variables, and the jitted step is one global-batch program (losses are
global-batch means; `keras.random` noise is the one-device noise).

The train step traces the model inside `fast_conv_gradients()`
(keras_vae/training/jax_conv_gradients.py), which gives Keras' JAX
`conv` and `conv_transpose` the same forward and a faster kernel gradient
(one matmul instead of the batch-contracting convolution XLA:CPU lowers it
to); on where JAX runs on the CPU, `KERAS_VAE_FAST_CONV_GRADIENTS=0` off.

Train, test and predict functions compile with the library's XLA:CPU
options (`keras_vae.training.xla_cpu_options`: convolutions on XLA's own
kernels rather than YNNPACK's, about twice as fast on the CPU).

Once the first train step has run (compiled), `fit` turns on the `malloc`
settings that keep XLA's per-step buffer in the heap
(`keras_vae.training.malloc_tuning.keep_freed_blocks`; after compiling,
since the compiler fragments a heap without `mmap`).
"""

import jax
import keras

from keras_vae.training import malloc_tuning
from keras_vae.training.inputs import unpack_inputs
from keras_vae.training.jax_conv_gradients import fast_conv_gradients
from keras_vae.training.narrow_conv import narrow_convs
from keras_vae.training.xla_cpu_options import keras_jit_options


def _updated_values(scope, variables, values):
    """The values assigned in `scope`, or the ones passed in if unchanged."""
    updated = []
    for variable, value in zip(variables, values):
        new_value = scope.get_current_value(variable)
        updated.append(value if new_value is None else new_value)
    return updated


class Trainer:
    """Mixin with the JAX `train_step` / `test_step` of every model."""

    def make_train_function(self, force=False):
        with keras_jit_options():
            super().make_train_function(force)
        self.train_function = self._restoring_state(
            self._keeping_freed_blocks(self.train_function),
            (
                "trainable_variables",
                "non_trainable_variables",
                "optimizer_variables",
                "metrics_variables",
            ),
        )

    def make_test_function(self, force=False):
        with keras_jit_options():
            super().make_test_function(force)
        self.test_function = self._restoring_state(
            self.test_function,
            ("trainable_variables", "non_trainable_variables", "metrics_variables"),
        )

    def make_predict_function(self, force=False):
        with keras_jit_options():
            return super().make_predict_function(force)

    def _keeping_freed_blocks(self, function):
        """`function`, calling `malloc_tuning.after_first_compile()` after
        its calls until that has run once in the process (unchanged if
        `function` is already wrapped: Keras keeps it across `fit` calls)."""
        if function is None or getattr(function, "restores_state", False):
            return function
        if not malloc_tuning.compile_pending():
            return function

        def keeping(state, iterator):
            outputs = function(state, iterator)
            malloc_tuning.after_first_compile()
            return outputs

        return keeping

    def _restoring_state(self, function, names):
        """`function(state, iterator)` that puts `state` back into the
        model's variables when it raises.

        Keras' JAX `fit` / `evaluate` detach the variables' values before
        the first step and re-attach them after the loop; an error while
        the step is traced (`unpack_inputs` refusing a batch, a shape
        mismatch) would leave a model without values. Uses Keras' own
        `jax_state_sync`.
        """
        if function is None or getattr(function, "restores_state", False):
            return function

        def restoring(state, iterator):
            try:
                return function(state, iterator)
            except Exception:
                leaves = jax.tree_util.tree_leaves(state)
                if not any(getattr(v, "is_deleted", lambda: False)() for v in leaves):
                    self._jax_state = dict(zip(names, state))
                    self._jax_state_synced = False
                    self.jax_state_sync()
                raise

        restoring.restores_state = True
        return restoring

    def _stateless_loss_terms(
        self,
        trainable_variables,
        non_trainable_variables,
        x,
        training,
        optimizer_variables=None,
    ):
        mapping = list(zip(self.trainable_variables, trainable_variables))
        mapping += list(zip(self.non_trainable_variables, non_trainable_variables))
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            terms = self.compute_loss_terms(x, training=training)
            loss = terms["loss"]
            if scope.losses:
                loss = loss + sum(scope.losses)
        non_trainable_variables = _updated_values(
            scope, self.non_trainable_variables, non_trainable_variables
        )
        if training:
            optimizer_mapping = zip(self.optimizer.variables, optimizer_variables)
            with keras.StatelessScope(state_mapping=list(optimizer_mapping)):
                loss = self.optimizer.scale_loss(loss)
        return loss, (terms, non_trainable_variables)

    def _stateless_update_trackers(self, metrics_variables, terms, x):
        mapping = list(zip(self.metrics_variables, metrics_variables))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            logs = self.update_loss_trackers(terms, x)
        return logs, _updated_values(scope, self.metrics_variables, metrics_variables)

    def train_step(self, state, data):
        (
            trainable_variables,
            non_trainable_variables,
            optimizer_variables,
            metrics_variables,
        ) = state
        x = unpack_inputs(data)
        grad_fn = jax.value_and_grad(self._stateless_loss_terms, has_aux=True)
        with fast_conv_gradients(), narrow_convs():
            (_, (terms, non_trainable_variables)), gradients = grad_fn(
                trainable_variables,
                non_trainable_variables,
                x,
                True,
                optimizer_variables,
            )
        trainable_variables, optimizer_variables = self.optimizer.stateless_apply(
            optimizer_variables, gradients, trainable_variables
        )
        logs, metrics_variables = self._stateless_update_trackers(metrics_variables, terms, x)
        state = (
            trainable_variables,
            non_trainable_variables,
            optimizer_variables,
            metrics_variables,
        )
        return logs, state

    def test_step(self, state, data):
        trainable_variables, non_trainable_variables, metrics_variables = state
        x = unpack_inputs(data)
        _, (terms, non_trainable_variables) = self._stateless_loss_terms(
            trainable_variables, non_trainable_variables, x, False
        )
        logs, metrics_variables = self._stateless_update_trackers(metrics_variables, terms, x)
        return logs, (
            trainable_variables,
            non_trainable_variables,
            metrics_variables,
        )
