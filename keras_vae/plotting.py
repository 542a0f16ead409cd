"""Pictures of what a model learned: grids, interpolations, traversals.

Every function returns a `matplotlib.figure.Figure` (made without pyplot, so
it works headless and leaks no global state; Jupyter shows it inline) and,
given `path`, also writes it there atomically (PNG unless the suffix says
otherwise). matplotlib is an optional dependency: `pip install
"keras-vae[plot]"`.

The model-based plots use the NumPy verbs of the zoo's continuous-latent
models (`encode(x) -> (z_mean, z_log_var)`, `decode(z)`, `reconstruct(x)`).

Example:

>>> import numpy as np
>>> from keras_vae import plotting
>>> images = np.random.default_rng(0).random((16, 28, 28, 1))
>>> figure = plotting.image_grid(images, num_columns=8)  # doctest: +SKIP
"""

import os
import tempfile

import numpy as np


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the env
        raise ImportError(
            "keras_vae.plotting needs matplotlib: "
            "pip install 'keras-vae[plot]' "
            "(or pip install matplotlib)."
        ) from error
    return matplotlib, Figure


def _umask():
    """The process' umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_figure(figure, path, dpi=100):
    """Writes `figure` to `path` atomically (temp file, then rename)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Directory {directory!r} does not exist.")
    suffix = os.path.splitext(path)[1] or ".png"
    handle, tmp = tempfile.mkstemp(suffix=suffix, dir=directory, prefix=".tmp-")
    os.close(handle)
    try:
        figure.savefig(tmp, dpi=dpi, format=suffix[1:], bbox_inches="tight")
        # mkstemp makes the file 0600; give it the mode `open` would
        # (0644 under the usual umask 022).
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _as_images(images):
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            "Expected images of shape (n, height, width), "
            "(n, height, width, 1) "
            f"or (n, height, width, 3), got {images.shape}."
        )
    if len(images) == 0:
        raise ValueError("Received no images (0 examples).")
    return np.clip(images, 0.0, 1.0)


def image_grid(
    images,
    num_columns=None,
    row_labels=None,
    title=None,
    cell_size=1.0,
    path=None,
):
    """Shows images in a grid, row by row.

    Args:
        images: array `(n, height, width[, channels])` with values in
            `[0, 1]` (clipped), 1 or 3 channels.
        num_columns: int. Images per row. Defaults to `ceil(sqrt(n))`.
        row_labels: optional list of str, one per row, written on the left.
        title: optional str.
        cell_size: float. Inches per image. Defaults to `1.0`.
        path: optional file path to save the figure to.

    Returns:
        A `matplotlib.figure.Figure`.

    Example:

    >>> import numpy as np
    >>> figure = image_grid(np.zeros((6, 28, 28)), num_columns=3)
    >>> len(figure.axes)
    6
    """
    _, Figure = _matplotlib()
    images = _as_images(images)
    n = len(images)
    num_columns = int(num_columns or int(np.ceil(np.sqrt(n))))
    if num_columns < 1:
        raise ValueError(f"`num_columns` must be >= 1, got {num_columns}.")
    num_rows = int(np.ceil(n / num_columns))
    if row_labels is not None and len(row_labels) != num_rows:
        raise ValueError(
            f"Got {len(row_labels)} row labels for {num_rows} rows."
        )
    figure = Figure(figsize=(num_columns * cell_size, num_rows * cell_size))
    for i, image in enumerate(images):
        axis = figure.add_subplot(num_rows, num_columns, i + 1)
        if image.shape[-1] == 1:
            axis.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
        else:
            axis.imshow(image)
        axis.set_xticks([])
        axis.set_yticks([])
        if row_labels is not None and i % num_columns == 0:
            axis.set_ylabel(row_labels[i // num_columns], fontsize=8)
    if title:
        figure.suptitle(title)
    figure.subplots_adjust(wspace=0.05, hspace=0.05)
    if path is not None:
        save_figure(figure, path)
    return figure


def plot_samples(model, num_samples=64, seed=0, path=None):
    """A grid of `model.sample(num_samples, seed=seed)`."""
    images = model.sample(num_samples, seed=seed)
    return image_grid(
        images, title=f"{num_samples} samples (seed {seed})", path=path
    )


def plot_reconstructions(model, x, path=None):
    """Inputs (top row of each pair) above their reconstructions.

    Args:
        model: a zoo model with `reconstruct(x)`.
        x: array of inputs, e.g. 8 test images.
        path: optional file path to save the figure to.
    """
    x = np.asarray(x)
    reconstruction = model.reconstruct(x)
    columns = min(len(x), 10)
    rows_x = [x[i : i + columns] for i in range(0, len(x), columns)]
    rows_r = [
        reconstruction[i : i + columns] for i in range(0, len(x), columns)
    ]
    images, labels = [], []
    for row_x, row_r in zip(rows_x, rows_r):
        pad = columns - len(row_x)
        blank = np.zeros((pad,) + x.shape[1:], "float32")
        images += [row_x, blank, row_r, blank]
        labels += ["input", "reconstruction"]
    return image_grid(
        np.concatenate(images),
        num_columns=columns,
        row_labels=labels,
        path=path,
    )


def plot_interpolation(model, x_a, x_b, steps=8, path=None):
    """Decodes a straight line between the posterior means of two inputs.

    Args:
        model: a zoo model with `encode` and `decode`.
        x_a: one input (no batch axis) or a batch of one.
        x_b: the other input.
        steps: int >= 2. Points on the line, ends included. Defaults to `8`.
        path: optional file path to save the figure to.
    """
    steps = int(steps)
    if steps < 2:
        raise ValueError(f"`steps` must be >= 2, got {steps}.")
    x_a, x_b = (_one_example(model, x) for x in (x_a, x_b))
    z_mean, _ = model.encode(np.concatenate([x_a, x_b]))
    weights = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
    z = (1.0 - weights) * z_mean[0] + weights * z_mean[1]
    images = model.decode(z)
    row = np.concatenate([x_a, images, x_b])
    return image_grid(
        row,
        num_columns=steps + 2,
        title="input, interpolation, input",
        path=path,
    )


def plot_latent_traversal(
    model, x, dims=None, values=np.linspace(-3.0, 3.0, 7), num_dims=8, path=None
):
    """Varies one latent at a time around the posterior mean of `x`.

    Each row sets one latent dimension to each of `values` (in prior
    standard deviations) with the others held at `x`'s posterior mean.
    Rows are sorted by the average KL of the dimension over `x` (most
    informative first), which puts the inactive ("collapsed") dimensions
    last and labels each row with its KL in nats.

    Args:
        model: a zoo model with `encode` and `decode`.
        x: a batch of inputs: the first is traversed, all of them rank the
            dimensions by KL (pass a few hundred for a stable ranking).
        dims: optional list of latent indices to show (in that order).
            Defaults to the `num_dims` with the highest KL.
        values: the values each latent takes. Defaults to 7 values in
            `[-3, 3]`.
        num_dims: int. Rows when `dims` is not given. Defaults to `8`.
        path: optional file path to save the figure to.
    """
    x = np.asarray(x)
    z_mean, z_log_var = model.encode(x)
    kl = np.mean(
        0.5 * (np.exp(z_log_var) + z_mean**2 - 1.0 - z_log_var), axis=0
    )
    latent_dim = z_mean.shape[1]
    if dims is None:
        dims = list(np.argsort(-kl)[: min(int(num_dims), latent_dim)])
    dims = [int(d) for d in dims]
    bad = [d for d in dims if not 0 <= d < latent_dim]
    if bad or not dims:
        raise ValueError(
            f"`dims` must be indices in [0, {latent_dim}), got {dims}."
        )
    values = np.asarray(values, dtype="float32").reshape(-1)
    z = np.repeat(z_mean[:1], len(dims) * len(values), axis=0)
    for row, dim in enumerate(dims):
        z[row * len(values) : (row + 1) * len(values), dim] = values
    images = model.decode(z)
    labels = [f"z{d} KL {kl[d]:.2f}" for d in dims]
    return image_grid(
        images,
        num_columns=len(values),
        row_labels=labels,
        title=f"latent traversal, values {values.min():g} to {values.max():g}",
        path=path,
    )


def plot_latent_scatter(model, x, labels=None, path=None, max_points=5000):
    """Posterior means of `x` in 2-D, coloured by label.

    A 2-D latent space is drawn as is; larger ones are projected on their
    first two principal components (the axis labels say which).

    Args:
        model: a zoo model with `encode`.
        x: a batch of inputs.
        labels: optional integer labels, one per input, for the colours.
        path: optional file path to save the figure to.
        max_points: int. At most this many points are drawn.
    """
    _, Figure = _matplotlib()
    x = np.asarray(x)[:max_points]
    z_mean, _ = model.encode(x)
    if z_mean.shape[1] == 2:
        points, axes = z_mean, ("z0", "z1")
    else:
        centred = z_mean - z_mean.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        points, axes = centred @ components[:2].T, ("PC 1", "PC 2")
    figure = Figure(figsize=(5, 4.5))
    axis = figure.add_subplot(1, 1, 1)
    if labels is None:
        axis.scatter(points[:, 0], points[:, 1], s=3)
    else:
        labels = np.asarray(labels)[: len(points)]
        if len(labels) != len(points):
            raise ValueError(
                f"Got {len(labels)} labels for {len(points)} inputs."
            )
        scatter = axis.scatter(
            points[:, 0], points[:, 1], c=labels, cmap="tab10", s=3
        )
        figure.colorbar(scatter, ax=axis, label="label")
    axis.set_xlabel(axes[0])
    axis.set_ylabel(axes[1])
    axis.set_title("posterior means")
    if path is not None:
        save_figure(figure, path)
    return figure


def _one_example(model, x):
    x = np.asarray(x)
    expected = getattr(model, "input_shape_", None)
    if expected is not None and x.shape == tuple(expected):
        x = x[None]
    if x.shape[0] != 1:
        raise ValueError(
            f"Expected one example, got a batch of shape {x.shape}."
        )
    return x


def plot_samples_at_temperature(
    model, temperature=1.0, num_samples=64, seed=0, num_columns=None, cell_size=1.0, path=None
):
    """A grid of `model.sample(num_samples, temperature=..., seed=seed)`.

    For models whose `sample` takes a temperature (`HierarchicalVAE`): it
    scales the prior's standard deviations, so `0.7` gives cleaner, less
    varied images than `1.0`.

    Args:
        model: a zoo model with `sample(num_samples, temperature, seed)`.
        temperature: float >= 0. Defaults to `1.0`.
        num_samples: int. Defaults to `64`.
        seed: int. Seed of the draws. Defaults to `0`.
        num_columns: int. Images per row. Defaults to `ceil(sqrt(n))`.
        cell_size: float. Inches per image. Defaults to `1.0`.
        path: optional file path to save the figure to.

    Example:

    >>> import keras_vae as kv
    >>> model = kv.HierarchicalVAE(
    ...     input_shape=(8, 8, 1), latent_channels=(1, 1), strides=(4, 2),
    ...     hidden_channels=4, seed=0)
    >>> figure = plot_samples_at_temperature(model, 0.7, num_samples=6)
    >>> len(figure.axes)
    6
    """
    images = model.sample(num_samples, temperature=temperature, seed=seed)
    return image_grid(
        images,
        num_columns=num_columns,
        title=f"{num_samples} samples, temperature {temperature:g} (seed {seed})",
        cell_size=cell_size,
        path=path,
    )


def plot_group_resampling(
    model,
    x,
    num_draws=8,
    temperature=1.0,
    seed=0,
    image_labels=None,
    cell_size=1.0,
    path=None,
):
    """What each latent group of a hierarchical model encodes.

    For each input and each number `m` of fixed groups, `1` to `L - 1`
    (`L = model.num_groups`), one row shows the input, its reconstruction
    (every group at its posterior mean) and `num_draws` images decoded with
    the top `m` groups at the input's posterior means and the lower groups
    redrawn from the prior: `model.decode(z_means[:m], temperature, seed)`.
    What a row keeps is what its top `m` groups encode; what changes along
    it, the groups below. Rows are ordered by input, then by `m`.

    Args:
        model: a model with several latent groups (`HierarchicalVAE`):
            `num_groups`, `encode(x) -> (z_means, z_log_vars)` lists, top
            group first, `decode(latents, temperature, seed)` and
            `reconstruct(x)`.
        x: a batch of inputs (pick them at random, not a prefix of a
            sorted test file).
        num_draws: int >= 1. Redraws per row. Defaults to `8`.
        temperature: float. Of the groups drawn. Defaults to `1.0`.
        seed: int. Seed of the groups drawn. Defaults to `0`.
        image_labels: optional list of str, one per input, naming it in the
            row labels (e.g. its index in the test set). Defaults to
            `x0, x1, ...`.
        cell_size: float. Inches per image. Defaults to `1.0`.
        path: optional file path to save the figure to.

    Returns:
        A `matplotlib.figure.Figure` of `len(x) * (L - 1)` rows and
        `num_draws + 2` columns.

    Example:

    >>> import numpy as np
    >>> import keras_vae as kv
    >>> model = kv.HierarchicalVAE(
    ...     input_shape=(8, 8, 1), latent_channels=(1, 1, 1), strides=(4, 4, 2),
    ...     hidden_channels=4, seed=0)
    >>> x = np.random.default_rng(0).integers(0, 2, (2, 8, 8, 1)).astype("float32")
    >>> figure = plot_group_resampling(model, x, num_draws=3)
    >>> len(figure.axes)  # 2 inputs x 2 numbers of fixed groups, 3 + 2 columns
    20
    """
    num_groups = int(getattr(model, "num_groups", 1))
    if num_groups < 2:
        raise ValueError(
            "plot_group_resampling needs a model with at least two latent "
            f"groups, got {num_groups}."
        )
    num_draws = int(num_draws)
    if num_draws < 1:
        raise ValueError(f"`num_draws` must be >= 1, got {num_draws}.")
    x = np.asarray(x)
    if image_labels is None:
        image_labels = [f"x{i}" for i in range(len(x))]
    if len(image_labels) != len(x):
        raise ValueError(f"Got {len(image_labels)} image labels for {len(x)} inputs.")
    z_means, _ = model.encode(x)
    reconstructions = np.asarray(model.reconstruct(x))
    draws = {}
    for fixed in range(1, num_groups):
        latents = [np.repeat(z, num_draws, axis=0) for z in z_means[:fixed]]
        images = model.decode(latents, temperature=temperature, seed=seed)
        draws[fixed] = np.asarray(images).reshape((len(x), num_draws) + x.shape[1:])
    rows, labels = [], []
    for i, label in enumerate(image_labels):
        for fixed in range(1, num_groups):
            rows += [x[i : i + 1], reconstructions[i : i + 1], draws[fixed][i]]
            labels.append(f"{label}\ntop {fixed}/{num_groups}")
    return image_grid(
        np.concatenate(rows),
        num_columns=num_draws + 2,
        row_labels=labels,
        title=(
            "input, reconstruction, then the top groups fixed\nand the lower "
            f"ones redrawn (temperature {temperature:g}, seed {seed})"
        ),
        cell_size=cell_size,
        path=path,
    )
