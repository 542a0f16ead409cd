"""FactorVAE disentanglement score (Kim & Mnih 2018)."""

import numpy as np

from keras_vae.metrics import ground_truth
from keras_vae.metrics.active_units import DEFAULT_THRESHOLD as ACTIVE_THRESHOLD


def _votes(
    representation_fn,
    images_fn,
    num_values,
    num_votes,
    samples_per_vote,
    scale,
    active,
    rng,
    batch_size,
):
    """`(num_votes,)` fixed factors and `(num_votes,)` argmin codes."""
    factors = rng.integers(0, len(num_values), size=num_votes)
    classes = ground_truth.sample_classes(num_values, num_votes * samples_per_vote, rng)
    classes = classes.reshape(num_votes, samples_per_vote, len(num_values))
    fixed = np.array([rng.integers(0, num_values[k]) for k in factors])
    classes[np.arange(num_votes), :, factors] = fixed[:, None]
    codes = ground_truth.represent(
        representation_fn,
        images_fn,
        classes.reshape(-1, len(num_values)),
        batch_size,
    )
    codes = codes.reshape(num_votes, samples_per_vote, -1)[..., active]
    variances = np.var(codes / scale[active], axis=1, ddof=1)
    return factors, np.argmin(variances, axis=-1)


def factor_vae_score(
    model,
    images_fn=None,
    num_values=None,
    num_train=10_000,
    num_eval=5_000,
    samples_per_vote=64,
    num_variance_estimate=10_000,
    prune_threshold=0.05,
    exclude_inactive=False,
    batch_size=1024,
    seed=0,
):
    """FactorVAE score of a representation: a majority-vote accuracy.

    Each vote fixes one factor `k` (drawn uniformly) to one random value,
    draws `samples_per_vote` inputs with the other factors random, divides
    their codes by the codes' global standard deviations and votes for the
    code of least variance. The score is the accuracy, on `num_eval` fresh
    votes, of the majority-vote classifier fitted on `num_train` votes that
    maps each code to the factor it most often votes for (Kim & Mnih 2018,
    "Disentangling by factorising"; the protocol and defaults of
    disentanglement_lib, Locatello et al. 2019), in `[0, 1]`. Codes whose
    standard deviation is below `prune_threshold` (collapsed to the prior)
    do not vote; with none left the score is 0. Chance is about
    `1 / num_factors`.

    A latent collapsed to the prior can still move a little with the
    input (a posterior-mean standard deviation of 0.06, say) and so pass
    `prune_threshold`; its votes then go to whichever factor its residue
    follows. `exclude_inactive=True` keeps only the active latents by
    Burda et al.'s criterion (`kv.metrics.active_units`: variance of the
    code over the data above `0.01`, i.e. standard deviation above 0.1,
    measured here on the `num_variance_estimate` inputs). The draws are
    the same either way, so the two scores differ only by who votes;
    report both.

    Args:
        model: a model with `encode` (its posterior means are used) or a
            function `inputs -> (n, num_codes)`.
        images_fn: `"sprites"` (the default), `"dsprites"`, or a function
            mapping factor classes `(n, num_factors)` int to inputs.
        num_values: tuple of ints, values per factor (needed with a custom
            `images_fn`).
        num_train: int. Votes to fit the classifier. Defaults to `10_000`.
        num_eval: int. Votes to score it. Defaults to `5_000`.
        samples_per_vote: int. Inputs per vote. Defaults to `64`.
        num_variance_estimate: int. Inputs for the global standard
            deviations. Defaults to `10_000`.
        prune_threshold: float. Minimum global standard deviation of a
            code that votes. Defaults to `0.05`.
        exclude_inactive: bool. Also exclude the codes whose variance is
            at most `0.01` (inactive latents, the threshold of
            `kv.metrics.active_units`). Defaults to `False`
            (disentanglement_lib's protocol).
        batch_size: int. Inputs rendered and encoded at once.
        seed: int. Seed of every draw. Defaults to `0`.

    Returns:
        float, the evaluation accuracy.

    Example:

    >>> identity = lambda classes: classes.astype("float32")
    >>> factor_vae_score(identity, identity, num_values=(3, 4), num_train=100,
    ...                  num_eval=50, samples_per_vote=16)
    1.0
    """
    ground_truth.check_positive(
        num_train=num_train,
        num_eval=num_eval,
        num_variance_estimate=num_variance_estimate,
    )
    if int(samples_per_vote) < 2:
        raise ValueError(f"`samples_per_vote` must be >= 2, got {samples_per_vote}.")
    images_fn, num_values = ground_truth.resolve_data(images_fn, num_values)
    representation_fn = ground_truth.representation_function(model)
    rng = np.random.default_rng(seed)
    classes = ground_truth.sample_classes(num_values, int(num_variance_estimate), rng)
    codes = ground_truth.represent(representation_fn, images_fn, classes, batch_size)
    scale = np.std(codes, axis=0, ddof=1)
    active = scale >= float(prune_threshold)
    if exclude_inactive:
        active &= np.var(codes, axis=0, ddof=1) > ACTIVE_THRESHOLD
    if not active.any():
        return 0.0
    args = (representation_fn, images_fn, num_values)
    rest = (int(samples_per_vote), scale, active, rng, batch_size)
    train_factors, train_codes = _votes(*args, int(num_train), *rest)
    eval_factors, eval_codes = _votes(*args, int(num_eval), *rest)
    counts = np.zeros((int(active.sum()), len(num_values)), dtype="int64")
    np.add.at(counts, (train_codes, train_factors), 1)
    classifier = np.argmax(counts, axis=1)
    return float(np.mean(classifier[eval_codes] == eval_factors))
