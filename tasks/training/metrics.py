"""Held-out metrics: regression in dollars (with a naive baseline) and classification."""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("mape_mean", "mape_std", "mape_median", "mae", "rmse", "r2")
METRIC_LABELS = {"mape_mean": "MAPE mean (%)", "mape_std": "MAPE std (%)", "mape_median": "MAPE median (%)",
                 "mae": "MAE ($)", "rmse": "RMSE ($)", "r2": "R^2"}


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """The tutorials' absolute percentage error (in %: mean, std, median) and MAE, RMSE, R^2."""
    actual = np.asarray(actual, dtype=np.float64).reshape(-1)
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    abs_percent = np.abs((predicted - actual) / actual) * 100
    residual = predicted - actual
    total = np.sum((actual - actual.mean()) ** 2)
    return {
        "mape_mean": float(abs_percent.mean()),
        "mape_std": float(abs_percent.std()),
        "mape_median": float(np.median(abs_percent)),
        "mae": float(np.abs(residual).mean()),
        "rmse": float(math.sqrt(np.mean(residual**2))),
        "r2": float(1 - np.sum(residual**2) / total) if total > 0 else float("nan"),
    }


def baseline_metrics(train_prices: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """A naive model that predicts the train median for every house."""
    return regression_metrics(actual, np.full(len(actual), np.median(train_prices)))


def classification_metrics(actual: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, scikit-learn's classification report (as a dict and as text) and the confusion matrix."""
    from sklearn.metrics import classification_report, confusion_matrix

    labels = list(range(len(classes)))
    return {
        "accuracy": float(np.mean(np.asarray(actual) == np.asarray(predicted))),
        "report": classification_report(actual, predicted, labels=labels, target_names=classes,
                                        output_dict=True, zero_division=0),
        "report_text": classification_report(actual, predicted, labels=labels, target_names=classes,
                                             zero_division=0),
        "confusion": confusion_matrix(actual, predicted, labels=labels).tolist(),
        "classes": list(classes),
    }
