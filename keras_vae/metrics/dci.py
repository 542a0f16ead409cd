"""DCI disentanglement (Eastwood & Williams 2018)."""

import numpy as np

from keras_vae.metrics import ground_truth

PREDICTORS = ("gradient_boosting", "lasso")


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "dci_disentanglement needs scikit-learn. Install it with "
            "`pip install 'keras-vae[disentanglement]'` (or `pip install "
            "scikit-learn`)."
        ) from error


def _importance(predictor, codes_train, factors_train, codes_test, factors_test, seed):
    """`(num_codes, num_factors)` importances and train / test accuracy."""
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    importance = np.zeros((num_codes, num_factors))
    train_scores, test_scores = [], []
    if predictor == "lasso":
        from sklearn.linear_model import Lasso

        mean, std = codes_train.mean(0), codes_train.std(0) + 1e-8
        codes_train, codes_test = (
            (codes_train - mean) / std,
            (codes_test - mean) / std,
        )
    for k in range(num_factors):
        y_train, y_test = factors_train[:, k], factors_test[:, k]
        if predictor == "gradient_boosting":
            from sklearn.ensemble import GradientBoostingClassifier

            fitted = GradientBoostingClassifier(random_state=seed)
            fitted.fit(codes_train, y_train)
            importance[:, k] = np.abs(fitted.feature_importances_)
            train_scores.append(np.mean(fitted.predict(codes_train) == y_train))
            test_scores.append(np.mean(fitted.predict(codes_test) == y_test))
        else:
            # Eastwood & Williams: a linear regression of the standardized
            # factor; importances are the absolute weights, score the R^2.
            y_mean, y_std = y_train.mean(), y_train.std() + 1e-8
            fitted = Lasso(alpha=0.02, random_state=seed)
            fitted.fit(codes_train, (y_train - y_mean) / y_std)
            importance[:, k] = np.abs(fitted.coef_)
            train_scores.append(fitted.score(codes_train, (y_train - y_mean) / y_std))
            test_scores.append(fitted.score(codes_test, (y_test - y_mean) / y_std))
    return importance, float(np.mean(train_scores)), float(np.mean(test_scores))


def _weighted_one_minus_entropy(weights):
    """Rows' `1 - H_base(row / sum)` averaged with weights `row sum / total`.

    The entropy's base is the row length, so each term is in `[0, 1]`.
    """
    if weights.shape[1] < 2 or weights.sum() <= 0:
        return 0.0
    p = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-11)
    logs = np.log(np.where(p > 0, p, 1.0)) / np.log(weights.shape[1])
    per_row = 1.0 + np.sum(p * logs, axis=1)
    return float(np.sum(per_row * weights.sum(axis=1) / weights.sum()))


def dci_disentanglement(
    model,
    images_fn=None,
    num_values=None,
    num_train=10_000,
    num_test=5_000,
    predictor="gradient_boosting",
    batch_size=1024,
    seed=0,
    return_all=False,
):
    """DCI disentanglement of a representation, in `[0, 1]`.

    Fits one predictor of each factor from the codes and reads a
    `(num_codes, num_factors)` importance matrix `R` from them (Eastwood &
    Williams 2018, "A framework for the quantitative evaluation of
    disentangled representations"). Disentanglement is
    `sum_j rho_j (1 - H_K(P_j))` where `P_j = R_j / sum_k R_jk` is code `j`'s
    importance spread over the `K` factors, `H_K` the entropy in base `K`
    and `rho_j` code `j`'s share of the total importance: 1 when each code
    predicts a single factor. As in disentanglement_lib (Locatello et al.
    2019) the default predictor is a gradient boosted trees classifier per
    factor (scikit-learn's `GradientBoostingClassifier`, default settings,
    importances `feature_importances_`); `"lasso"` is the paper's linear
    alternative (absolute weights of a Lasso regression, `alpha=0.02`, on
    standardized codes and factors), much faster.

    Needs scikit-learn: `pip install 'keras-vae[disentanglement]'`.

    Args:
        model: a model with `encode` (its posterior means are used) or a
            function `inputs -> (n, num_codes)`.
        images_fn: `"sprites"` (the default), `"dsprites"`, or a function
            mapping factor classes `(n, num_factors)` int to inputs.
        num_values: tuple of ints, values per factor (needed with a custom
            `images_fn`).
        num_train: int. Inputs to fit the predictors. Defaults to `10_000`.
        num_test: int. Inputs to score them. Defaults to `5_000`.
        predictor: `"gradient_boosting"` or `"lasso"`.
        batch_size: int. Inputs rendered and encoded at once.
        seed: int. Seed of the draws and the predictors. Defaults to `0`.
        return_all: bool. Return a dict with `disentanglement`,
            `completeness` (does each factor live in one code),
            `informativeness_train` / `informativeness_test` (mean accuracy,
            or R^2 for lasso, of the predictors) and `importance` (`R`).

    Returns:
        float disentanglement, or the dict above.

    Example:

    >>> identity = lambda classes: classes.astype("float32")
    >>> d = dci_disentanglement(identity, identity, num_values=(3, 4),
    ...                         num_train=200, num_test=100)
    >>> d > 0.9
    True
    """
    _sklearn()
    if predictor not in PREDICTORS:
        raise ValueError(f"`predictor` must be one of {PREDICTORS}, got {predictor!r}.")
    ground_truth.check_positive(num_train=num_train, num_test=num_test)
    images_fn, num_values = ground_truth.resolve_data(images_fn, num_values)
    representation_fn = ground_truth.representation_function(model)
    rng = np.random.default_rng(seed)
    factors_train = ground_truth.sample_classes(num_values, int(num_train), rng)
    factors_test = ground_truth.sample_classes(num_values, int(num_test), rng)
    codes_train = ground_truth.represent(representation_fn, images_fn, factors_train, batch_size)
    codes_test = ground_truth.represent(representation_fn, images_fn, factors_test, batch_size)
    importance, train_score, test_score = _importance(
        predictor, codes_train, factors_train, codes_test, factors_test, seed
    )
    disentanglement = _weighted_one_minus_entropy(importance)
    if not return_all:
        return disentanglement
    return {
        "disentanglement": disentanglement,
        "completeness": _weighted_one_minus_entropy(importance.T),
        "informativeness_train": train_score,
        "informativeness_test": test_score,
        "importance": importance,
    }
