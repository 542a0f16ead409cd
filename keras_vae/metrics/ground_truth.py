"""Shared plumbing of the disentanglement metrics (MIG, FactorVAE, DCI).

A *ground-truth data set* is a pair `(images_fn, num_values)`: `num_values`
lists how many values each generative factor takes, and `images_fn(classes)`
renders the inputs of an `(n, num_factors)` int array of factor classes.
`"sprites"` (the default) and `"dsprites"` name the two built in. A
*representation* is a model with `encode(x) -> (z_mean, z_log_var)` (the
posterior means are used, as in Locatello et al. 2019) or any function
`representation_fn(inputs) -> (n, num_codes)`.
"""

import numpy as np

DATASETS = ("sprites", "dsprites")


def resolve_data(images_fn, num_values):
    """Returns `(images_fn, num_values)` from the metrics' arguments."""
    from keras_vae.datasets import sprites

    if images_fn is None:
        images_fn = "sprites"
    if isinstance(images_fn, str):
        if images_fn not in DATASETS:
            raise ValueError(
                f"Unknown ground-truth data set {images_fn!r}; use one of "
                f"{DATASETS} or pass `images_fn` and `num_values`."
            )
        if num_values is not None and tuple(num_values) != sprites.NUM_VALUES:
            raise ValueError(
                f"{images_fn!r} has factors with {sprites.NUM_VALUES} values; "
                f"got num_values={tuple(num_values)}."
            )
        fn = sprites.sprites_images
        if images_fn == "dsprites":
            fn = sprites.dsprites_images
        return fn, sprites.NUM_VALUES
    if not callable(images_fn):
        raise TypeError(
            "`images_fn` must be 'sprites', 'dsprites' or a function mapping "
            f"factor classes (n, num_factors) to inputs; got {images_fn!r}."
        )
    if num_values is None:
        raise ValueError("Pass `num_values` (values per factor) with a custom `images_fn`.")
    num_values = tuple(int(v) for v in num_values)
    if not num_values or min(num_values) < 2:
        raise ValueError(f"Every factor needs at least 2 values, got num_values={num_values}.")
    return images_fn, num_values


def representation_function(model):
    """`inputs -> (n, num_codes)` float64, from a model or a function."""
    if hasattr(model, "encode"):

        def represent(inputs):
            codes = model.encode(inputs)
            return codes[0] if isinstance(codes, (tuple, list)) else codes

    elif callable(model):
        represent = model
    else:
        raise TypeError(
            "Expected a model with an `encode` method (e.g. a VAE) or a "
            f"representation function, got {type(model).__name__}."
        )

    def checked(inputs):
        codes = np.asarray(represent(inputs), dtype="float64")
        if codes.ndim != 2 or codes.shape[0] != len(inputs):
            raise ValueError(
                f"The representation of {len(inputs)} inputs must have shape "
                f"({len(inputs)}, num_codes), got {codes.shape}."
            )
        if not np.all(np.isfinite(codes)):
            raise ValueError("The representation contains NaN or infinite values.")
        return codes

    return checked


def sample_classes(num_values, num, rng):
    """`num` factor-class vectors drawn uniformly: int64 `(num, K)`."""
    return np.stack([rng.integers(0, v, size=num) for v in num_values], axis=-1)


def represent(representation_fn, images_fn, classes, batch_size):
    """Codes of the inputs of `classes`, rendered and encoded in chunks."""
    batch_size = int(batch_size)
    if batch_size <= 0:
        raise ValueError(f"`batch_size` must be positive, got {batch_size}.")
    chunks = [
        representation_fn(images_fn(classes[start : start + batch_size]))
        for start in range(0, len(classes), batch_size)
    ]
    return np.concatenate(chunks, axis=0)


def check_positive(**counts):
    for name, value in counts.items():
        if int(value) <= 0:
            raise ValueError(f"`{name}` must be a positive int, got {value}.")
