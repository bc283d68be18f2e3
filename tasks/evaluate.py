"""Regression metrics in dollars, the naive baseline, plots and the readable report."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tasks.cache import atomic_write_bytes  # noqa: E402

METRIC_NAMES = ("mape_mean", "mape_std", "mape_median", "mae", "rmse", "r2")


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


def plot_history(history: dict[str, list[float]], path: Path, loss_name: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in history.items():
        if name in ("loss", "val_loss"):
            ax.plot(range(1, len(values) + 1), values, label="train" if name == "loss" else "validation")
    ax.set(xlabel="epoch", ylabel=f"loss ({loss_name})", title="Training and validation loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_predictions(actual: np.ndarray, predicted: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(actual / 1e3, predicted / 1e3, s=12, alpha=0.7)
    low, high = float(min(actual.min(), predicted.min()) / 1e3), float(max(actual.max(), predicted.max()) / 1e3)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect")
    ax.set(xlabel="actual price (k$)", ylabel="predicted price (k$)", title="Predicted vs actual (test)")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_residuals(actual: np.ndarray, predicted: np.ndarray, path: Path) -> Path:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    residual = (predicted - actual) / 1e3
    left.scatter(actual / 1e3, residual, s=12, alpha=0.7)
    left.axhline(0, color="grey", linestyle="--")
    left.set(xlabel="actual price (k$)", ylabel="predicted - actual (k$)", title="Residuals")
    right.hist(np.abs(predicted - actual) / actual * 100, bins=30)
    right.set(xlabel="absolute percentage error (%)", ylabel="houses", title="Error distribution")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


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


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path, title: str = "Confusion matrix (test)"):
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1.5))
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=classes).plot(ax=ax, colorbar=False)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Lay out, write beside and rename (a plot is complete or absent), close."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.tight_layout()
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_csv(rows: list[dict], columns: list[str], path: Path) -> Path:
    """Rows as CSV with these columns (others ignored), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, buffer.getvalue().encode())
    return path


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def cell(value) -> str:
        if not isinstance(value, float):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
