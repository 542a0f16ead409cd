"""Evaluation metrics: anomaly detection helpers and more."""

from keras_vae.metrics.anomaly import anomaly_threshold, roc_auc
from keras_vae.metrics.mutual_information import (
    mutual_information,
    mutual_information_from_posteriors,
)
from keras_vae.metrics.text_metrics import (
    evaluate_text_model,
    perplexity,
    perplexity_from_log_likelihoods,
)

__all__ = [
    "anomaly_threshold",
    "evaluate_text_model",
    "mutual_information",
    "mutual_information_from_posteriors",
    "perplexity",
    "perplexity_from_log_likelihoods",
    "roc_auc",
]
