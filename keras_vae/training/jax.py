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

The train step traces the model inside `fast_conv_transpose()`, which
swaps Keras' JAX `conv_transpose` for one with the same forward and a
faster kernel gradient (XLA:CPU lowers the default one to a dilated,
reversed convolution over the batch, about 10x slower than the matmul
used here; see benchmarks/RESULTS.md). It is on where JAX runs on the
CPU (measured there); `KERAS_VAE_FAST_CONV_TRANSPOSE=1` turns it on on
any platform (not yet measured on a GPU), `=0` off.
"""

import contextlib
import os

import jax
import keras

from keras_vae.training.inputs import unpack_inputs


def _updated_values(scope, variables, values):
    """The values assigned in `scope`, or the ones passed in if unchanged."""
    updated = []
    for variable, value in zip(variables, values):
        new_value = scope.get_current_value(variable)
        updated.append(value if new_value is None else new_value)
    return updated


FAST_CONV_TRANSPOSE_ENV = "KERAS_VAE_FAST_CONV_TRANSPOSE"

# The input dtypes the patches-times-matmul kernel gradient is tested for;
# anything else (bfloat16, float16, dilation > 1, ...) keeps Keras' op.
_FAST_DTYPES = ("float32",)


def _kernel_gradient_plan(
    inputs, kernel, strides, padding, output_padding, data_format, dilation_rate
):
    """How to compute `conv_transpose`'s kernel gradient as patches x matmul.

    Keras' JAX `conv_transpose` is `lax.conv_transpose` with
    `transpose_kernel=True` and per-axis padding `(pl, pr)`: along one
    spatial axis (dilation 1), input position `i` adds `x[i] @ kernel[u]`
    to output position `s * i + u - (k - 1 - pl)`. So the kernel gradient
    is `dk[u, co, ci] = sum_{b, i} dy[b, s * i + u - (k - 1 - pl), co] *
    x[b, i, ci]` (out-of-range `dy` is zero): the stride-`s`, size-`k`
    windows of `dy` padded by `(k - 1 - pl, k - 1 - pr)` (one window per
    input position), times the inputs. Returns `None` where that is not
    derived and tested (the caller then keeps Keras' op), else a dict.
    """
    from keras.src.backend import standardize_data_format
    from keras.src.backend.common.backend_utils import (
        compute_conv_transpose_padding_args_for_jax,
    )

    num_spatial = inputs.ndim - 2
    if num_spatial not in (1, 2, 3) or kernel.ndim != inputs.ndim:
        return None
    if str(inputs.dtype) not in _FAST_DTYPES or str(kernel.dtype) not in _FAST_DTYPES:
        return None
    data_format = standardize_data_format(data_format)
    channels_axis = -1 if data_format == "channels_last" else 1
    if inputs.shape[channels_axis] != kernel.shape[-1]:
        return None  # Keras' op raises its own error.
    dilation = (dilation_rate,) * num_spatial if isinstance(dilation_rate, int) else dilation_rate
    if tuple(dilation) != (1,) * num_spatial:
        return None
    strides = (strides,) * num_spatial if isinstance(strides, int) else tuple(strides)
    if len(strides) != num_spatial:
        return None
    pads = compute_conv_transpose_padding_args_for_jax(
        input_shape=inputs.shape,
        kernel_shape=kernel.shape,
        strides=strides,
        padding=padding,
        output_padding=output_padding,
        dilation_rate=1,
    )
    kernel_size = tuple(kernel.shape[:num_spatial])
    window_pads = [(k - 1 - pl, k - 1 - pr) for k, (pl, pr) in zip(kernel_size, pads)]
    return {
        "data_format": data_format,
        "kernel_size": kernel_size,
        "strides": strides,
        "window_pads": window_pads,
    }


def _patches_kernel_gradient(x, dy, plan):
    """The kernel gradient of `conv_transpose` (see `_kernel_gradient_plan`)
    as the windows of `dy` times `x`: one matmul over batch and positions."""
    num_spatial = x.ndim - 2
    channels_last = plan["data_format"] == "channels_last"
    spatial_axes = range(1, 1 + num_spatial) if channels_last else range(2, 2 + num_spatial)
    # Negative window padding crops `dy`; the rest is padding with zeros.
    start = [0] * dy.ndim
    limit = list(dy.shape)
    lax_pads = []
    for axis, (low, high) in zip(spatial_axes, plan["window_pads"]):
        start[axis] = max(-low, 0)
        limit[axis] = dy.shape[axis] - max(-high, 0)
        lax_pads.append((max(low, 0), max(high, 0)))
    dy = jax.lax.slice(dy, start, limit)
    spatial = "DHW"[3 - num_spatial :]
    lhs_spec = "N" + spatial + "C" if channels_last else "NC" + spatial
    patches = jax.lax.conv_general_dilated_patches(
        dy,
        plan["kernel_size"],
        plan["strides"],
        lax_pads,
        dimension_numbers=(lhs_spec, spatial + "IO", "N" + spatial + "C"),
        precision=jax.lax.Precision.HIGHEST,
    )  # (batch, *input spatial, cout * prod(kernel_size)), ordered (cout, *kernel_size)
    if not channels_last:
        x = jax.numpy.moveaxis(x, 1, -1)
    if patches.shape[1:-1] != x.shape[1:-1]:
        raise AssertionError(
            f"Kernel gradient windows {patches.shape} do not match the inputs {x.shape}."
        )
    cout = dy.shape[-1 if channels_last else 1]
    patches = patches.reshape(-1, patches.shape[-1])
    dk = jax.numpy.tensordot(patches, x.reshape(-1, x.shape[-1]), axes=((0,), (0,)))
    dk = dk.reshape((cout,) + plan["kernel_size"] + (x.shape[-1],))
    return jax.numpy.moveaxis(dk, 0, num_spatial).astype(x.dtype)


def with_fast_kernel_gradient(conv_transpose):
    """Keras' JAX `conv_transpose` with a patches-times-matmul kernel gradient.

    Same arguments and forward as `conv_transpose` (it is called); under
    `jax.grad` the input gradient is the transpose of the forward (the
    strided convolution XLA derives anyway) and the kernel gradient is the
    stride-`s` windows of the output gradient times the inputs. Cases not
    derived and tested (dilation > 1, dtypes other than float32, more
    than 3 spatial axes) call `conv_transpose` unchanged.
    """

    def fast_conv_transpose(
        inputs,
        kernel,
        strides=1,
        padding="valid",
        output_padding=None,
        data_format=None,
        dilation_rate=1,
    ):
        args = (strides, padding, output_padding, data_format, dilation_rate)
        inputs = jax.numpy.asarray(inputs)
        kernel = jax.numpy.asarray(kernel)
        plan = _kernel_gradient_plan(inputs, kernel, *args)
        if plan is None:
            return conv_transpose(inputs, kernel, *args)

        @jax.custom_vjp
        def op(x, k):
            return conv_transpose(x, k, *args)

        def op_forward(x, k):
            return conv_transpose(x, k, *args), (x, k)

        def op_backward(residuals, dy):
            x, k = residuals
            (dx,) = jax.linear_transpose(lambda x: conv_transpose(x, k, *args), x)(dy)
            return dx, _patches_kernel_gradient(x, dy, plan)

        op.defvjp(op_forward, op_backward)
        return op(inputs, kernel)

    fast_conv_transpose.is_fast_conv_transpose = True
    return fast_conv_transpose


@contextlib.contextmanager
def fast_conv_transpose():
    """Within this context, Keras' JAX `conv_transpose` (what
    `keras.ops.conv_transpose` and `Conv*DTranspose` call) has the fast
    kernel gradient of `with_fast_kernel_gradient`; restored on exit.

    A no-op on other backends, with `KERAS_VAE_FAST_CONV_TRANSPOSE=0`, and
    where JAX's default platform is not the CPU unless that variable is `1`
    (the speed-up is measured on XLA:CPU only).
    The JAX train step traces the model inside it: the swap happens once
    per trace, not per step, and nothing outside keras-vae's step sees it.
    """
    flag = os.environ.get(FAST_CONV_TRANSPOSE_ENV, "")
    if (
        keras.backend.backend() != "jax"
        or flag == "0"
        or (flag != "1" and jax.default_backend() != "cpu")
    ):
        yield
        return
    from keras.src.backend import nn as backend_nn

    original = backend_nn.conv_transpose
    if getattr(original, "is_fast_conv_transpose", False):
        yield  # Already inside one.
        return
    backend_nn.conv_transpose = with_fast_kernel_gradient(original)
    try:
        yield
    finally:
        backend_nn.conv_transpose = original


class Trainer:
    """Mixin with the JAX `train_step` / `test_step` of every model."""

    def make_train_function(self, force=False):
        super().make_train_function(force)
        self.train_function = self._restoring_state(
            self.train_function,
            (
                "trainable_variables",
                "non_trainable_variables",
                "optimizer_variables",
                "metrics_variables",
            ),
        )

    def make_test_function(self, force=False):
        super().make_test_function(force)
        self.test_function = self._restoring_state(
            self.test_function,
            ("trainable_variables", "non_trainable_variables", "metrics_variables"),
        )

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
        with fast_conv_transpose():
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
