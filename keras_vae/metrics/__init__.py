"""Evaluation metrics: anomaly detection helpers and more."""

from keras_vae.metrics.active_units import active_units
from keras_vae.metrics.anomaly import anomaly_threshold, roc_auc
from keras_vae.metrics.dci import dci_disentanglement
from keras_vae.metrics.factor_vae import factor_vae_score
from keras_vae.metrics.mig import mutual_information_gap
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
    "active_units",
    "anomaly_threshold",
    "dci_disentanglement",
    "evaluate_text_model",
    "factor_vae_score",
    "mutual_information",
    "mutual_information_from_posteriors",
    "mutual_information_gap",
    "perplexity",
    "perplexity_from_log_likelihoods",
    "roc_auc",
]
