"""Evaluation metrics: anomaly detection helpers and more."""

from keras_vae.metrics.anomaly import anomaly_threshold, roc_auc

__all__ = ["anomaly_threshold", "roc_auc"]
