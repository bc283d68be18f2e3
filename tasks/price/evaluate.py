"""Evaluation of a trained price model on the test houses: metrics against the naive baseline, plots,
report.md, metrics.json and the exported model folder, all under the run's --out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.core.artifacts import Report
from tasks.core.files import atomic_copy, atomic_write_json, atomic_write_text, replacing_folder
from tasks.core.tables import write_csv
from tasks.houses.arrays import read_split
from tasks.houses.dataset import Dataset
from tasks.price import report
from tasks.price.data import TargetScale, train_prices
from tasks.price.options import PriceOptions
from tasks.price.train import predict_prices
from tasks.training import plots
from tasks.training.metrics import METRIC_LABELS, METRIC_NAMES, baseline_metrics, regression_metrics
from tasks.training.saved_models import load_keras_model


def export_model(model_file: Path, dataset: Dataset, options: PriceOptions, target: Path) -> Path:
    """model.keras + encoders.json + training.json: all `predict` needs, no pickle; replaced in one step."""
    with replacing_folder(target) as tmp:
        atomic_copy(model_file, tmp / "model.keras")
        atomic_copy(dataset.encoders_path, tmp / "encoders.json")
        atomic_write_json(tmp / "training.json", {"options": options.model_dump(mode="json"),
                                                  "target": {"kind": options.target,
                                                             "price_max": dataset.encoders()["price_max"]}})
    return target


PREDICTION_COLUMNS = ["house", "actual_price", "predicted_price", "error_pct"]


def prediction_rows(houses: np.ndarray, actual: np.ndarray, predicted: np.ndarray) -> list[dict]:
    """One row per test house, the largest errors first: error_pct is (predicted - actual) / actual in %."""
    error = (predicted - actual) / actual * 100
    return [{"house": int(houses[i]), "actual_price": round(float(actual[i]), 2),
             "predicted_price": round(float(predicted[i]), 2), "error_pct": round(float(error[i]), 2)}
            for i in np.argsort(-np.abs(error), kind="stable")]


def top_price_ratios(actual: np.ndarray, predicted: np.ndarray, count: int = 5) -> list[float]:
    """predicted / actual for the `count` most expensive houses, dearest first (a ceiling shows as low ratios)."""
    dearest = np.argsort(-actual, kind="stable")[:count]
    return [round(float(predicted[i] / actual[i]), 4) for i in dearest]


def worse_than_baseline(metrics: dict, baseline: dict) -> str | None:
    """Why the model is no better than predicting the train median, or None."""
    if metrics["mape_mean"] >= baseline["mape_mean"]:
        return (f"its test MAPE {metrics['mape_mean']:.2f} % is no better than the {baseline['mape_mean']:.2f} % "
                "of predicting the train median for every house")
    if metrics["r2"] < 0:
        return f"its R^2 is {metrics['r2']:.3f}: the train median explains the test prices better"
    return None


def fold_metrics(model_file: Path, dataset: Dataset, options: PriceOptions, held_out: np.ndarray) -> dict:
    """Metrics of a cross-validation fold's model on its held-out train houses."""
    scale = TargetScale(options.target, dataset.encoders()["price_max"])
    model = load_keras_model(model_file)
    return regression_metrics(*predict_prices(model, dataset.train_path, options.strategy, scale, held_out))


def evaluate_model(model_file: Path, done: dict, dataset: Dataset, options: PriceOptions, out: Path,
                   data_info: dict, cv_folds: list[dict] | None) -> tuple[dict, Report]:
    """Test metrics, baseline, plots, report.md, metrics.json and model/ under `out`; (metrics.json's content,
    the report to publish)."""
    scale = TargetScale(options.target, dataset.encoders()["price_max"])
    model = load_keras_model(model_file)
    actual, predicted = predict_prices(model, dataset.test_path, options.strategy, scale)
    rows = prediction_rows(read_split(dataset.test_path, ("house",))["house"], actual, predicted)
    write_csv(rows, PREDICTION_COLUMNS, out / "predictions.csv")
    ratios = top_price_ratios(actual, predicted)
    figures = {
        "loss per epoch": plots.plot_history(done["history"], out / "plots" / "loss.png",
                                             f"{options.loss} on the {options.target} target"),
        "predicted vs actual": plots.plot_predictions(actual, predicted, out / "plots" / "predicted_vs_actual.png"),
        "residuals": plots.plot_residuals(actual, predicted, out / "plots" / "residuals.png"),
    }
    metrics = {
        **regression_metrics(actual, predicted),
        "n_train": done["n_train"] + done["n_validation"], "n_validation": done["n_validation"],
        "n_test": len(actual), "strategy": options.strategy, "trainer": options.trainer,
        "epochs": done["epochs_run"], "best_epoch": done["best_epoch"], "seconds": round(done["seconds"], 2),
        "replicas": done["replicas"],
        "top5_price_ratios": ratios, "top5_price_ratio_median": float(np.median(ratios)),  # a ceiling shows low
    }
    baseline = baseline_metrics(train_prices(dataset.train_path), actual)
    metrics["warning"] = worse_than_baseline(metrics, baseline)
    cv = {**report.cv_summary(cv_folds), "k": len(cv_folds)} if cv_folds else None
    atomic_write_json(out / "metrics.json", {**metrics, "baseline": baseline, "cv": cv})
    export_model(model_file, dataset, options, out / "model")
    relative = {title: str(path.relative_to(out)) for title, path in figures.items()}
    text = report.train_report(metrics, baseline, options.model_dump(mode="json"), data_info,
                               {"mean": float(actual.mean()), "std": float(actual.std())}, relative, cv,
                               rows[:5])
    atomic_write_text(out / "report.md", text)
    table = [{"metric": METRIC_LABELS[n], "model": round(metrics[n], 4), "baseline": round(baseline[n], 4)}
             for n in METRIC_NAMES]
    return {**metrics, "baseline": baseline, "cv": cv}, Report("train", text, "Training report", table, "metrics",
                           f"{options.strategy}/{options.trainer} test metrics", figures, "plot", out)
