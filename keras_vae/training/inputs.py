"""What a batch given to `fit` / `evaluate` may hold: inputs only (backend-neutral)."""

import inspect

import numpy as np
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


def to_numpy(x):
    """`x` as a NumPy array if it is an array or a backend tensor, else `None`.

    Takes NumPy arrays and the tensors of every backend (`tf.Tensor`,
    `jax.Array`, `torch.Tensor`, whichever backend Keras runs), so inputs
    given as tensors are checked like NumPy ones. Data sets, generators and
    anything else give `None`.

    Example:

    >>> to_numpy(np.zeros((2, 3))).shape
    (2, 3)
    >>> to_numpy(iter([])) is None
    True
    """
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "torch" and hasattr(x, "detach"):  # a tensor, not a DataLoader
        return x.detach().cpu().numpy()
    if module in ("tensorflow", "jax", "jaxlib", "keras") and hasattr(x, "__array__"):
        try:
            return np.asarray(x)
        except (TypeError, ValueError):  # ragged / sparse tensors
            return None
    return None


def peek_inputs(data):
    """The inputs `x` of the first batch of a data set, without consuming it.

    For a `tf.data.Dataset` the first batch is read from `data.take(1)` (a
    new iterator, so the data set itself is untouched); for a
    `keras.utils.PyDataset`, `data[0]`; for a Python generator, its first
    batch, and the generator is replaced by one that yields that batch
    again and then the rest. `fit`, `evaluate` and `predict` check that
    batch like a NumPy input, so a wrongly shaped or scaled data set fails
    before training with the same message as an array.

    Args:
        data: what `fit` / `evaluate` / `predict` received as `x` (or as
            `validation_data`).

    Returns:
        A pair `(data, x)`: `data` to pass on (a generator re-chained, all
        else unchanged) and the first batch's inputs as a NumPy array, or
        `None` when `data` is not one of those kinds or is empty.

    Example:

    >>> batches = (np.full((2, 3), i) for i in range(3))
    >>> batches, first = peek_inputs(batches)
    >>> first.tolist()
    [[0, 0, 0], [0, 0, 0]]
    >>> [int(batch[0, 0]) for batch in batches]
    [0, 1, 2]
    """
    batch = None
    if hasattr(data, "element_spec") and hasattr(data, "take"):
        for batch in data.take(1):
            break
    elif inspect.isgenerator(data):
        try:
            batch = next(data)
        except StopIteration:
            return data, None
        data = _chained(batch, data)
    elif _is_py_dataset(data):
        if data.num_batches == 0:
            return data, None
        batch = data[0]
    if batch is None:
        return data, None
    if isinstance(batch, (tuple, list)) and len(batch) in (1, 2, 3):
        batch = unpack_x_y_sample_weight(tuple(batch))[0]
    return data, to_numpy(batch)


def _chained(first, rest):
    yield first
    yield from rest


def _is_py_dataset(data):
    from keras.utils import PyDataset

    return isinstance(data, PyDataset)
