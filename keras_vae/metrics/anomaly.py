"""Anomaly detection helpers: decision threshold and ROC AUC (NumPy)."""

import numpy as np


def _scores(values, name, allow_inf=False):
    """Scores as a float64 vector. NaN and `-inf` are never scores; `+inf`
    (the exported `score` signature's answer to an invalid input, the most
    anomalous) is accepted where `allow_inf`."""
    values = np.asarray(values, dtype="float64").reshape(-1)
    if values.size == 0:
        raise ValueError(f"`{name}` is empty.")
    if np.any(np.isnan(values)) or np.any(values == -np.inf):
        raise ValueError(f"`{name}` contains NaN or -inf values.")
    if not allow_inf and np.any(values == np.inf):
        raise ValueError(
            f"`{name}` contains {int(np.sum(values == np.inf))} +inf scores: the "
            "exported `score` signature gives +inf to invalid inputs (NaN pixels, "
            "pixels outside [0, 1], sentences with <pad>); a threshold is set on "
            "valid normal data, so drop them."
        )
    return values


def anomaly_threshold(scores_valid, false_positive_rate=0.05):
    """Score threshold that flags `false_positive_rate` of normal data.

    Compute `model.anomaly_score` on held-out *normal* examples (not used for
    training) and pass the scores here; examples scoring strictly above the
    returned threshold are flagged as anomalies. On data distributed like
    `scores_valid`, about `false_positive_rate` of normal examples are
    flagged.

    Args:
        scores_valid: 1-D array of anomaly scores of normal validation data.
        false_positive_rate: float in `[0, 1)`. Fraction of normal examples
            allowed above the threshold. Defaults to `0.05`.

    Returns:
        float: the `1 - false_positive_rate` quantile of `scores_valid`.

    Example:

    >>> import numpy as np
    >>> round(anomaly_threshold(np.arange(100.0), false_positive_rate=0.1), 6)
    89.1
    """
    scores = _scores(scores_valid, "scores_valid")
    rate = float(false_positive_rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(
            "`false_positive_rate` must be in [0, 1), got "
            f"{false_positive_rate}."
        )
    return float(np.quantile(scores, 1.0 - rate))


def roc_auc(scores_normal, scores_anomalous):
    """Area under the ROC curve of a score separating two groups.

    The probability that a random anomalous example scores higher than a
    random normal one (ties count one half): the Mann-Whitney U statistic
    divided by `n_normal * n_anomalous`. `1.0` separates perfectly, `0.5`
    is chance. A `+inf` score (an invalid input, scored by the exported
    `score` signature) ranks above every finite one; NaN is an error.

    Args:
        scores_normal: 1-D array of scores of normal examples.
        scores_anomalous: 1-D array of scores of anomalous examples.

    Returns:
        float in `[0, 1]`.

    Example:

    >>> roc_auc([0.1, 0.2, 0.3], [0.25, 0.9])
    0.8333333333333334
    """
    normal = _scores(scores_normal, "scores_normal", allow_inf=True)
    anomalous = _scores(scores_anomalous, "scores_anomalous", allow_inf=True)
    values = np.concatenate([normal, anomalous])
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype="float64")
    ranks[order] = np.arange(1, len(values) + 1)
    # Average the ranks of tied values.
    unique, inverse, counts = np.unique(
        values, return_inverse=True, return_counts=True
    )
    rank_sums = np.zeros(len(unique))
    np.add.at(rank_sums, inverse, ranks)
    ranks = (rank_sums / counts)[inverse]
    n_a = len(anomalous)
    u = ranks[len(normal) :].sum() - n_a * (n_a + 1) / 2.0
    return float(u / (len(normal) * n_a))
