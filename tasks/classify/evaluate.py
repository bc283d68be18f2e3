"""Held-out evaluation of a classifier: per label column and, for multilabel, per label.

Per column (both kinds): accuracy of the most probable class of that column, scikit-learn's
classification report, a confusion matrix plot, the chance level (1 / classes) and the majority
share (always answering the most common class). Multilabel adds per-label precision, recall and
F1 at the threshold, and the exact-match ratio (every label of an image right). Files under the
run's --out: metrics.json, report.md, plots/ and the exported model/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.classify.encoding import LabelEncoding
from tasks.classify.images import LabelledImages, split_rows
from tasks.classify.options import ClassifierOptions
from tasks.classify.train import load_images, predict
from tasks.core.artifacts import Report
from tasks.core.files import atomic_copy, atomic_write_json, atomic_write_text, replacing_folder
from tasks.core.tables import markdown_table
from tasks.training import plots
from tasks.training.metrics import classification_metrics
from tasks.training.saved_models import load_keras_model


def column_metrics(encoding: LabelEncoding, table: pd.DataFrame, predicted) -> dict[str, dict]:
    results = {}
    for column, classes in encoding.columns.items():
        actual = encoding.indices(table, column)
        guessed = np.argmax(encoding.column_probabilities(predicted, column), axis=1)
        metrics = classification_metrics(actual, guessed, classes)
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


def classification_report_md(metrics: dict, data: dict, options: dict, plots: dict[str, str]) -> str:
    lines = [f"# {options['kind']} classifier ({options['backbone']} backbone)", "",
             f"Data: {data['source']}: {data['n_train']} train images ({data['n_validation']} of them for "
             f"validation), {data['n_test']} test images, {data['size']} px, split {data['split']}.", "",
             "## Accuracy per label column (test)", "",
             markdown_table([{"column": name, "accuracy": m["accuracy"], "chance (1/classes)": m["chance"],
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


def export_classifier(folder: Path, target: Path) -> Path:
    """model.keras + labels.json: all `predict-labels` needs, no pickle; replaced in one step."""
    with replacing_folder(target) as tmp:
        for name in ("model.keras", "labels.json"):
            atomic_copy(folder / name, tmp / name)
    return target


def evaluate_classifier(folder: Path, done: dict, images: LabelledImages, options: ClassifierOptions, out: Path,
                        data_info: dict) -> tuple[dict, Report]:
    """Per-column reports, confusion matrices, curves, report.md, metrics.json and model/ under `out`."""
    encoding = LabelEncoding.from_json(json.loads((folder / "labels.json").read_text()))
    model = load_keras_model(folder / "model.keras", "classifier")
    test_rows = split_rows(images, "test")
    table = images.table(images.label_columns).iloc[test_rows]
    predicted = predict(model, load_images(images, test_rows))
    metrics = {"kind": encoding.kind, "backbone": options.backbone,
               "columns": column_metrics(encoding, table, predicted),
               "n_test": len(test_rows), "epochs": done["epochs_run"], "best_epoch": done["best_epoch"],
               "seconds": round(done["seconds"], 2)}
    if encoding.kind == "multilabel":
        metrics["multilabel"] = multilabel_metrics(encoding, table, predicted)
    heads = ["labels"] if encoding.kind == "multilabel" else list(encoding.columns)
    figures = {"training curves": plots.plot_curves(done["history"], heads, out / "plots" / "curves.png")}
    for name, column in metrics["columns"].items():
        figures[f"confusion matrix: {name}"] = plots.plot_confusion(
            column["confusion"], column["classes"], out / "plots" / f"confusion_{name}.png",
            f"{name}: confusion matrix (test)")
    atomic_write_json(out / "metrics.json", metrics)
    export_classifier(folder, out / "model")
    info = {**data_info, "n_train": done["n_train"] + done["n_validation"], "n_validation": done["n_validation"],
            "n_test": len(test_rows), "size": images.size}
    relative = {title: str(path.relative_to(out)) for title, path in figures.items()}
    text = classification_report_md(metrics, info, options.model_dump(mode="json"), relative)
    atomic_write_text(out / "report.md", text)
    table_rows = [{"column": name, "accuracy": round(m["accuracy"], 4), "chance": round(m["chance"], 4),
                   "majority": round(m["majority"], 4)} for name, m in metrics["columns"].items()]
    return metrics, Report("classify", text, "Classification report", table_rows, "accuracy",
                           f"{encoding.kind} test accuracy per label column", figures, "classify-plot", out)
