"""What a batch given to `fit` / `evaluate` may hold: inputs only (backend-neutral)."""

from keras.utils import unpack_x_y_sample_weight


def unpack_inputs(data):
    """The inputs `x` of a batch; refuses targets and sample weights.

    A generative model's target is its input, and its loss terms are batch
    means, so `fit` / `evaluate` take `x` alone: an array, or a data set /
    generator / `PyDataset` yielding `x` or `(x,)`. A batch that also holds
    `y` (from `fit(x, y)`, `validation_data=(x, y)` or a data set of
    `(x, y)` pairs) or sample weights (`sample_weight=`, `class_weight=`, or
    `(x, y, w)` triples) raises a `ValueError` naming what to change,
    rather than training while silently ignoring it. Every backend's
    trainer calls this at the start of its steps.

    Args:
        data: one batch as Keras hands it to `train_step` / `test_step`.

    Returns:
        `x`.

    Example:

    >>> import numpy as np
    >>> unpack_inputs((np.zeros((2, 3)),)).shape
    (2, 3)
    >>> unpack_inputs((np.zeros((2, 3)), np.ones(2)))
    Traceback (most recent call last):
    ...
    ValueError: fit / evaluate received targets `y` ...
    """
    x, y, sample_weight = unpack_x_y_sample_weight(data)
    if y is not None:
        raise ValueError(
            "fit / evaluate received targets `y` (from `fit(x, y)`, "
            "`validation_data=(x, y)` or a data set yielding `(x, y)` pairs), "
            "but a generative model learns from its inputs alone and would "
            "ignore them. Pass `x` only: `fit(x)`, `validation_data=(x_val,)`, "
            "or map the data set to its inputs, e.g. `ds.map(lambda x, y: x)`."
        )
    if sample_weight is not None:
        raise ValueError(
            "fit / evaluate received `sample_weight` (or `class_weight`, or a "
            "data set yielding `(x, y, sample_weight)`), which these models do "
            "not support: their loss terms are batch means. Leave it out; to "
            "weight examples, repeat or resample them in the input data."
        )
    return x


def check_fit_arguments(x, y=None, sample_weight=None, class_weight=None, validation_data=None):
    """Refuses targets and sample weights before `fit` / `evaluate` start.

    The same errors as `unpack_inputs`, raised before a batch is read
    or a weight changes: for the `y`, `sample_weight` and `class_weight`
    arguments, a `validation_data` tuple, and `tf.data` data sets (from
    their `element_spec`). Batches of generators and `PyDataset`s are
    checked by the step itself.

    Example:

    >>> import numpy as np
    >>> check_fit_arguments(np.zeros((2, 3)), validation_data=(np.zeros((2, 3)),))
    >>> check_fit_arguments(np.zeros((2, 3)), sample_weight=np.ones(2))
    Traceback (most recent call last):
    ...
    ValueError: fit / evaluate received `sample_weight` ...
    """
    weights = sample_weight if class_weight is None else class_weight
    unpack_inputs((x, y, weights))
    if isinstance(validation_data, (tuple, list)):
        unpack_inputs(tuple(validation_data))
    for data in (x, validation_data):
        spec = getattr(data, "element_spec", None)
        if isinstance(spec, tuple):
            unpack_inputs(spec)
