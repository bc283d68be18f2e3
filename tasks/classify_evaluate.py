"""Held-out evaluation of a classifier: per label column and, for multilabel, per label.

Per column (both kinds): accuracy of the most probable class of that column, scikit-learn's
classification report, a confusion matrix plot, the chance level (1 / classes) and the majority
share (always answering the most common class). Multilabel adds per-label precision, recall and
F1 at the threshold, and the exact-match ratio (every label of an image right).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tasks import evaluate
from tasks.label_encoding import LabelEncoding


def column_metrics(encoding: LabelEncoding, table: pd.DataFrame, predicted) -> dict[str, dict]:
    results = {}
    for column, classes in encoding.columns.items():
        actual = encoding.indices(table, column)
        guessed = np.argmax(encoding.column_probabilities(predicted, column), axis=1)
        metrics = evaluate.classification_metrics(actual, guessed, classes)
        counts = np.bincount(actual, minlength=len(classes))
        metrics["chance"] = 1.0 / len(classes)
        metrics["majority"] = float(counts.max() / counts.sum())
        results[column] = metrics
    return results


def multilabel_metrics(encoding: LabelEncoding, table: pd.DataFrame, predicted: np.ndarray) -> dict:
    """Per-label precision/recall/F1 at the threshold and the exact-match ratio."""
    from sklearn.metrics import classification_report

    actual = encoding.encode(table).astype(int)
    guessed = (np.asarray(predicted) >= encoding.threshold).astype(int)
    kwargs = dict(target_names=encoding.classes, zero_division=0)
    return {
        "exact_match": float(np.mean(np.all(actual == guessed, axis=1))),
        "threshold": encoding.threshold,
        "per_label": classification_report(actual, guessed, output_dict=True, **kwargs),
        "per_label_text": classification_report(actual, guessed, **kwargs),
    }


def plot_curves(history: dict[str, list[float]], heads: list[str], path: Path) -> Path:
    """Loss and accuracy per epoch for each head (train and validation)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(heads), figsize=(4.5 * len(heads), 6.5), squeeze=False)
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
    return evaluate.save_figure(fig, path)


def classification_report_md(metrics: dict, data: dict, options: dict, plots: dict[str, str]) -> str:
    lines = [f"# {options['kind']} classifier ({options['backbone']} backbone)", "",
             f"Data: {data['source']}: {data['n_train']} train images ({data['n_validation']} of them for "
             f"validation), {data['n_test']} test images, {data['size']} px, split {data['split']}.", "",
             "## Accuracy per label column (test)", "",
             evaluate.markdown_table([{"column": name, "accuracy": m["accuracy"], "chance (1/classes)": m["chance"],
                                       "majority class share": m["majority"], "classes": len(m["classes"])}
                                      for name, m in metrics["columns"].items()],
                                     ["column", "accuracy", "chance (1/classes)", "majority class share", "classes"])]
    if "multilabel" in metrics:
        multilabel = metrics["multilabel"]
        lines += ["", f"Exact match (every label right at threshold {multilabel['threshold']}): "
                      f"{multilabel['exact_match']:.3f}", "", "### Per label", "", "```",
                  multilabel["per_label_text"].rstrip(), "```"]
    for name, m in metrics["columns"].items():
        lines += ["", f"## {name}", "", "```", m["report_text"].rstrip(), "```"]
    lines += ["", "## Plots", ""] + [f"![{title}]({path})" for title, path in plots.items()]
    lines += ["", "## Options", "", "```", *(f"{k}: {v}" for k, v in options.items()), "```", ""]
    return "\n".join(lines)
