import numbers

import keras
import numpy as np
from keras import ops

from keras_vae.training import (
    MALLOC_TUNED,
    Trainer,
    check_fit_arguments,
    inference,
    release_free_memory,
    with_nan_guard,
)
from keras_vae.training.inputs import peek_inputs, to_numpy

OBJECTIVES = ("elbo", "iwae")
POSTERIORS = ("gaussian", "iaf")


def check_objective(objective, num_importance_samples):
    """Raises a `ValueError` naming the problem unless `objective` is one of
    `OBJECTIVES` and `num_importance_samples` suits it (`>= 1`; exactly `1`
    for the ELBO, which draws one sample). Shared by the models that offer
    the IWAE objective (Burda et al. 2016)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"`objective` must be one of {OBJECTIVES}, got {objective!r}.")
    if num_importance_samples < 1:
        raise ValueError(
            f"`num_importance_samples` must be >= 1, got {num_importance_samples}."
        )
    if objective == "elbo" and num_importance_samples != 1:
        raise ValueError(
            f"`num_importance_samples={num_importance_samples}` needs "
            "`objective='iwae'` (the ELBO objective draws one sample)."
        )


def check_posterior(posterior, flow_steps, flow_hidden_dims):
    """Checks a posterior family and its flow's settings; returns
    `(flow_steps, flow_hidden_dims)` as an int and a tuple of ints.

    `posterior` must be one of `POSTERIORS`: `"gaussian"` (diagonal) takes
    no flow (`flow_steps` `0`), `"iaf"` (an inverse autoregressive flow,
    Kingma et al. 2016) `flow_steps >= 1`; `flow_steps=None` picks `2` for
    `"iaf"` and `0` otherwise. Raises a `ValueError` naming the problem.
    Shared by the models that offer flow posteriors (`VAE`,
    `HierarchicalVAE`).

    Example:

    >>> check_posterior("iaf", None, [64])
    (2, (64,))
    """
    if posterior not in POSTERIORS:
        raise ValueError(f"`posterior` must be one of {POSTERIORS}, got {posterior!r}.")
    if flow_steps is None:
        flow_steps = 2 if posterior == "iaf" else 0
    flow_steps = int(flow_steps)
    flow_hidden_dims = tuple(int(d) for d in flow_hidden_dims)
    if flow_steps < 0:
        raise ValueError(f"`flow_steps` must be >= 0, got {flow_steps}.")
    if posterior == "gaussian" and flow_steps > 0:
        raise ValueError(
            f"`flow_steps={flow_steps}` needs a flow posterior: pass "
            "`posterior='iaf'`, or `flow_steps=0` for the Gaussian posterior."
        )
    if posterior == "iaf" and flow_steps == 0:
        raise ValueError("`posterior='iaf'` needs `flow_steps` >= 1, got 0.")
    if not flow_hidden_dims or min(flow_hidden_dims) < 1:
        raise ValueError(f"`flow_hidden_dims` must be positive ints, got {flow_hidden_dims}.")
    return flow_steps, flow_hidden_dims


def check_count(name, value, allow_none=False):
    """`value` as an int, after checking it is a positive whole number.

    Every count a public verb takes (`num_samples`, `batch_size`,
    `max_decode`, `beam_width`, `max_length`...) goes through it, so a bad
    count raises a `ValueError` naming the argument and the value instead
    of giving a wrong answer (`elbo(num_samples=-1)` once returned -KL).
    `2.0` is taken as `2`; `2.5`, `0`, `-1`, `True` and strings are not.

    Args:
        name: str. The argument's name, for the error message.
        value: the count.
        allow_none: bool. Let `None` (an argument's "pick for me") through.

    Returns:
        `int(value)`, or `None`.

    Example:

    >>> check_count("num_samples", 3)
    3
    >>> check_count("num_samples", -1)
    Traceback (most recent call last):
    ...
    ValueError: `num_samples` must be a positive integer, got -1.
    """
    if value is None and allow_none:
        return None
    whole = (
        isinstance(value, numbers.Real)
        and not isinstance(value, (bool, np.bool_))
        and float(value).is_integer()
    )
    if not whole or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


class GenerativeModel(Trainer, keras.Model):
    """Base class of the zoo's models: the shared training contract.

    A subclass declares the names of its loss terms in `loss_term_names`
    (the first is `"loss"`, the objective) and implements
    `compute_loss_terms(x, training)` with `keras.ops`. The backend's
    `Trainer` (see `keras_vae.training`) turns that into `train_step` and
    `test_step`; every term is reported in the `fit` / `evaluate` logs.

    The base class also:

    - counts optimizer steps in a non-trainable variable, `steps_trained`,
      that schedules (KL warm-up, capacity annealing) read under jit;
    - checks the inputs of `fit`, `evaluate`, `predict` and the inference
      verbs with `validate_inputs`, so bad data fails early with a clear
      message: NumPy arrays and backend tensors whole, `tf.data` data sets,
      generators and `PyDataset`s by their first batch (see
      `keras_vae.training.inputs.peek_inputs`);
    - refuses counts (`num_samples`, `batch_size`...) that are not positive
      integers (`check_count`), and latents that are not finite
      (`check_latent_batch`);
    - stops training that produces a non-finite loss
      (`keras_vae.training.NaNGuard`, added to the callbacks of `fit`);
    - loads `.keras` files compiled on any backend on any other.

    `fit` and `evaluate` take inputs only: `x` as an array, or a data set,
    generator or `PyDataset` yielding `x` or `(x,)` batches, and
    `validation_data=(x_val,)` or such a data set. A model's target is its
    input and its loss terms are batch means, so targets `y` (`fit(x, y)`,
    `validation_data=(x_val, y_val)`, `(x, y)` batches) and sample weights
    (`sample_weight=`, `class_weight=`, `(x, y, w)` batches) raise a
    `ValueError` saying what to pass instead, on every backend, rather than
    being silently ignored. To weight examples, repeat or resample them.
    """

    loss_term_names = ("loss",)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.loss_trackers = [
            keras.metrics.Mean(name=name) for name in self.loss_term_names
        ]
        self.steps_trained = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            # Every replica of a `tf.distribute` strategy increments it
            # identically; keep one count rather than one per replica.
            aggregation="only_first_replica",
            name="steps_trained",
        )

    @property
    def metrics(self):
        return list(self.loss_trackers)

    def compute_loss_terms(self, x, training=False):
        """Returns a dict of scalar loss terms for the batch `x`.

        Must contain `"loss"`, the objective minimized by `fit`, and every
        name in `loss_term_names`.
        """
        raise NotImplementedError

    def update_loss_trackers(self, terms, x):
        """Updates one running mean per loss term and returns the logs.

        Each batch counts by its number of examples (the leading dimension
        of `x`), so the logs of an epoch are per-example means however the
        batches differ in size: an unweighted mean of batch means would
        count the short last batch, or the few long sentences of a
        length-bucketed batch, as much as a full batch.
        """
        missing = [n for n in self.loss_term_names if n not in terms]
        if missing:
            raise ValueError(
                f"{type(self).__name__}.compute_loss_terms() did not return "
                f"the loss terms {missing}."
            )
        weight = ops.cast(ops.shape(keras.tree.flatten(x)[0])[0], "float32")
        for tracker in self.loss_trackers:
            tracker.update_state(terms[tracker.name], sample_weight=weight)
        return {tracker.name: tracker.result() for tracker in self.loss_trackers}

    def advance_step(self, training):
        """Returns the number of steps trained so far, as a float32 scalar.

        In training it also increments `steps_trained`, so the count is
        carried by the step itself (and survives JAX's stateless, jitted
        step) rather than by an eager callback.
        """
        step = ops.cast(self.steps_trained, "float32")
        if training:
            self.steps_trained.assign(self.steps_trained + 1)
        return step

    def validate_inputs(self, x):
        """Raises a `ValueError` naming the problem if `x` is bad input.

        The base class accepts anything; subclasses check shape, dtype and
        range. `x` is a NumPy array: a whole input converted from an array
        or backend tensor, or the first batch of a data set.
        """

    def _checked(self, x):
        """`x` as a NumPy array, after `validate_inputs`."""
        array = to_numpy(x)
        x = np.asarray(x) if array is None else array
        self.validate_inputs(x)
        return x

    def check_latent_batch(self, z, latent_dim):
        """`z` as float32 NumPy, after checking it is a finite batch of
        shape `(batch, latent_dim)`; raises a `ValueError` naming the
        problem otherwise (NaN latents decode to NaN images or empty
        sentences)."""
        array = to_numpy(z)
        z = np.asarray(z) if array is None else array
        if z.ndim != 2 or z.shape[1] != latent_dim:
            raise ValueError(f"Expected latents of shape (batch, {latent_dim}), got {z.shape}.")
        if not (np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)):
            raise ValueError(f"Expected numeric latents, got dtype {z.dtype}.")
        z = z.astype("float32")
        if not np.all(np.isfinite(z)):
            bad = int(np.size(z) - np.count_nonzero(np.isfinite(z)))
            raise ValueError(
                f"Latents contain {bad} NaN or infinite values (float32); "
                "they would decode to NaN."
            )
        return z

    def check_image_batch(self, x, expected_shape):
        """Raises a `ValueError` naming the problem unless `x` is a finite
        float batch of shape `(batch, *expected_shape)`."""
        x = np.asarray(x)
        expected = tuple(expected_shape)
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            hint = ""
            if x.shape[1:] == expected[:-1] and expected[-1] == 1:
                hint = " Add the channel axis with x[..., None]."
            raise ValueError(
                f"Expected inputs of shape (batch, {', '.join(map(str, expected))}), "
                f"got shape {x.shape}.{hint}"
            )
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(
                f"Expected floating-point inputs, got dtype {x.dtype}. Convert "
                "images with x.astype('float32') / 255 (or the dataset's scale)."
            )
        if not np.all(np.isfinite(x)):
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"Inputs contain {bad} NaN or infinite values.")

    def _validated(self, data):
        """Applies `validate_inputs` to what `fit` / `evaluate` / `predict`
        received: arrays and backend tensors whole, data sets, generators
        and `PyDataset`s by their first batch. Returns the data to use (a
        generator is re-chained after its first batch is read)."""
        if isinstance(data, (tuple, list)) and data and not np.isscalar(data[0]):
            self._validated(data[0])
            return data
        array = to_numpy(data)
        if array is not None:
            self.validate_inputs(array)
            return data
        data, first = peek_inputs(data)
        if first is not None:
            self.validate_inputs(first)
        return data

    def fit(self, x=None, y=None, *args, callbacks=None, **kwargs):
        check_fit_arguments(
            x,
            y,
            kwargs.get("sample_weight"),
            kwargs.get("class_weight"),
            kwargs.get("validation_data"),
        )
        x = self._validated(x)
        if kwargs.get("validation_data") is not None:
            kwargs["validation_data"] = self._validated(kwargs["validation_data"])
        if MALLOC_TUNED:
            release_free_memory()  # what loading the data freed
        try:
            return super().fit(x, y, *args, callbacks=with_nan_guard(callbacks), **kwargs)
        finally:
            if MALLOC_TUNED:
                release_free_memory()

    def evaluate(self, x=None, y=None, *args, **kwargs):
        check_fit_arguments(x, y, kwargs.get("sample_weight"))
        if not kwargs.get("_use_cached_eval_dataset"):
            # (`fit` validating each epoch: its `validation_data` was
            # checked once when `fit` started.)
            x = self._validated(x)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        return super().predict(self._validated(x), *args, **kwargs)

    def compile_from_config(self, config):
        # A `.keras` file records the optimizer class of the backend it was
        # saved on (torch has its own subclasses) and `jit_compile=True`
        # when saved on JAX. Map both to what works on this backend.
        config = dict(config)
        optimizer = config.get("optimizer")
        if isinstance(optimizer, dict) and str(
            optimizer.get("module", "")
        ).startswith("keras.src.backend."):
            config["optimizer"] = {
                **optimizer,
                "module": "keras.optimizers",
                "registered_name": None,
            }
        if keras.backend.backend() == "torch" and config.get("jit_compile"):
            config["jit_compile"] = False
        super().compile_from_config(config)

    # ------------------------------------------------------------------
    # Serving protocol (see `keras_vae.export`). All in `keras.ops`; the
    # exporter draws the noise itself (stateless, seeded) and passes it in.

    def serving_spec(self, score_num_samples=1):
        """Describes the tensors of the exported serving functions.

        Returns a dict with:

        - `"inputs"`: `(name, shape, dtype)` of one data example, the input
          of `encode_tensor`, `reconstruct_tensor` and `score_from_noise`;
        - `"codes"`: `(name, shape, dtype)` of one input of `decode_tensor`
          (latents, or code indices for a VQ-VAE);
        - `"sample_noise"`: `(shape, distribution)` of the noise one sample
          needs, `distribution` being `"normal"` or `"uniform"`;
        - `"score_noise"`: the same for one scored example, or `None` when
          the score is deterministic.

        Shapes exclude the batch axis.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement the serving protocol "
            "(serving_spec, encode_tensor, decode_tensor, reconstruct_tensor, "
            "sample_from_noise, score_from_noise)."
        )

    def encode_tensor(self, inputs):
        """Encodes a batch of inputs: returns a dict of tensors."""
        raise NotImplementedError(f"{type(self).__name__}.encode_tensor")

    def decode_tensor(self, codes):
        """Decodes a batch of codes: returns a dict of tensors."""
        raise NotImplementedError(f"{type(self).__name__}.decode_tensor")

    def reconstruct_tensor(self, inputs):
        """Reconstructs a batch deterministically: returns a dict."""
        raise NotImplementedError(f"{type(self).__name__}.reconstruct_tensor")

    def sample_from_noise(self, noise):
        """Turns `(num_samples, *sample_noise_shape)` noise into samples."""
        raise NotImplementedError(f"{type(self).__name__}.sample_from_noise")

    def score_from_noise(self, inputs, noise):
        """Per-example anomaly score (higher: more anomalous) in a dict
        `{"score": (batch,)}`; `noise` follows `serving_spec()["score_noise"]`."""
        raise NotImplementedError(f"{type(self).__name__}.score_from_noise")

    def screen_inputs_tensor(self, inputs, value_range=None):
        """Finds the examples of a batch that the model cannot score.

        Returns `(valid, inputs)`: a `(batch,)` bool tensor, `False` for an
        invalid example, and the inputs with each invalid example replaced
        by a harmless valid one (zeros), so that it cannot poison the graph.
        The export fails `serving_default`, `encode` requests holding
        invalid examples and scores them `+inf` in `score`. The base class
        calls a floating-point example invalid when a value is NaN or
        infinite, or outside `value_range` (`(low, high)`, inclusive) when
        given; subclasses pass their range or add their own rules.
        """
        if "float" not in str(inputs.dtype):
            return ops.ones((ops.shape(inputs)[0],), "bool"), inputs
        axes = tuple(range(1, len(inputs.shape)))
        valid = ops.all(ops.isfinite(inputs), axis=axes)
        if value_range is not None:
            low, high = value_range
            inside = ops.logical_and(inputs >= low, inputs <= high)
            valid = ops.logical_and(valid, ops.all(inside, axis=axes))
        keep = ops.reshape(valid, (-1,) + (1,) * len(axes))
        return valid, ops.where(keep, inputs, ops.zeros_like(inputs))

    def _run_batched(self, fn, arrays, batch_size):
        """Applies `fn` to slices of NumPy `arrays`; returns NumPy outputs.

        `fn` takes one tensor per array and returns a tensor or a tuple of
        tensors. Outputs are concatenated along the first axis.
        """
        batch_size = check_count("batch_size", batch_size)
        arrays = [np.asarray(a) for a in arrays]
        num = arrays[0].shape[0]
        chunks = []
        for start in range(0, num, batch_size):
            batch = [ops.convert_to_tensor(a[start : start + batch_size]) for a in arrays]
            with inference():
                outputs = fn(*batch)
            if not isinstance(outputs, (tuple, list)):
                outputs = (outputs,)
            chunks.append([ops.convert_to_numpy(o) for o in outputs])
        if not chunks:
            raise ValueError("Received an empty input (0 examples).")
        results = tuple(np.concatenate(parts, axis=0) for parts in zip(*chunks))
        return results if len(results) > 1 else results[0]

    @classmethod
    def from_preset(cls, preset):
        """Loads a pretrained model of this class (or a subclass) from a
        preset: a built-in name (`keras_vae.list_presets()`), a preset
        folder or the http(s) URL of a preset archive. See
        `keras_vae.presets.from_preset`."""
        from keras_vae import presets

        return presets.from_preset(preset, cls=cls)

    def save_to_preset(self, preset_dir, metadata=None):
        """Writes the model as a preset folder (`config.json`,
        `model.weights.h5`, `metadata.json` with sha256 hashes). See
        `keras_vae.presets.save_to_preset`."""
        from keras_vae import presets

        return presets.save_to_preset(self, preset_dir, metadata)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
