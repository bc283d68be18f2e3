"""The plots people look at after a training: loss per epoch, predicted vs actual, residuals,
confusion matrices, and per-head curves of a classifier. Each returns the PNG's path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.core.figures import pyplot, save_figure


def plot_history(history: dict[str, list[float]], path: Path, loss_name: str) -> Path:
    fig, ax = pyplot().subplots(figsize=(6, 4))
    for name, values in history.items():
        if name in ("loss", "val_loss"):
            ax.plot(range(1, len(values) + 1), values, label="train" if name == "loss" else "validation")
    ax.set(xlabel="epoch", ylabel=f"loss ({loss_name})", title="Training and validation loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_predictions(actual: np.ndarray, predicted: np.ndarray, path: Path) -> Path:
    """On log axes when every price is positive: prices span two orders of magnitude, and on linear axes one
    $5M house squeezes the other houses into a corner; equal distances are then equal percentage errors."""
    fig, ax = pyplot().subplots(figsize=(5, 5))
    ax.scatter(actual / 1e3, predicted / 1e3, s=12, alpha=0.7)
    low, high = float(min(actual.min(), predicted.min()) / 1e3), float(max(actual.max(), predicted.max()) / 1e3)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect")
    if low > 0:
        ax.set(xscale="log", yscale="log")
        from matplotlib.ticker import FuncFormatter  # after pyplot(), which picks the backend

        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        ax.fill_between([low, high], [low / 1.25, high / 1.25], [low * 1.25, high * 1.25], color="grey", alpha=0.15,
                        label="within 25 %")
    ax.set(xlabel="actual price (k$)", ylabel="predicted price (k$)", title="Predicted vs actual (test)")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_residuals(actual: np.ndarray, predicted: np.ndarray, path: Path) -> Path:
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(10, 4))
    residual = (predicted - actual) / 1e3
    left.scatter(actual / 1e3, residual, s=12, alpha=0.7)
    left.axhline(0, color="grey", linestyle="--")
    left.set(xlabel="actual price (k$)", ylabel="predicted - actual (k$)", title="Residuals")
    right.hist(np.abs(predicted - actual) / actual * 100, bins=30)
    right.set(xlabel="absolute percentage error (%)", ylabel="houses", title="Error distribution")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path,
                   title: str = "Confusion matrix (test)") -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = pyplot().subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1.5))
    ConfusionMatrixDisplay(np.asarray(confusion), display_labels=classes).plot(ax=ax, colorbar=False)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    return save_figure(fig, path)


def plot_curves(history: dict[str, list[float]], heads: list[str], path: Path) -> Path:
    """Loss and accuracy per epoch for each head of a classifier (train and validation)."""
    fig, axes = pyplot().subplots(2, len(heads), figsize=(4.5 * len(heads), 6.5), squeeze=False)
    for col, head in enumerate(heads):
        prefix = "" if head == "labels" else f"{head}_"
        accuracy = "binary_accuracy" if head == "labels" else f"{prefix}accuracy"
        for row, (metric, label) in enumerate(((f"{prefix}loss", "loss"), (accuracy, "accuracy"))):
            ax = axes[row][col]
            for key, shown in ((metric, "train"), (f"val_{metric}", "validation")):
                if key in history:
                    ax.plot(range(1, len(history[key]) + 1), history[key], label=shown)
            ax.set(xlabel="epoch", ylabel=label, title=f"{head}: {label}")
            ax.grid(alpha=0.3)
            ax.legend()
    return save_figure(fig, path)
