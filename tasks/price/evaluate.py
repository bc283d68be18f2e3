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
from tasks.price.data import STRATEGY_INPUTS, TargetScale, train_prices
from tasks.price.explain import CHUNK_ROWS, Baseline, Explanation, explain, explanation_table
from tasks.price.explain import FILE as BASELINE_FILE
from tasks.price.interval import DEFAULT_LEVEL, Interval, interval_metrics
from tasks.price.interval import FILE as INTERVAL_FILE
from tasks.price.options import PriceOptions
from tasks.price.train import predict_prices
from tasks.training import plots
from tasks.training.metrics import METRIC_LABELS, METRIC_NAMES, baseline_metrics, regression_metrics
from tasks.training.saved_models import load_keras_model


def export_model(model_file: Path, dataset: Dataset, options: PriceOptions, target: Path,
                 interval: Interval | None = None, baseline: Baseline | None = None) -> Path:
    """model.keras + encoders.json + training.json + interval.json + baseline.json: all `predict` needs (the price,
    its range, its explanation), no pickle; replaced in one step."""
    with replacing_folder(target) as tmp:
        atomic_copy(model_file, tmp / "model.keras")
        atomic_copy(dataset.encoders_path, tmp / "encoders.json")
        atomic_write_json(tmp / "training.json", {"options": options.model_dump(mode="json"),
                                                  "target": {"kind": options.target,
                                                             "price_max": dataset.encoders()["price_max"]}})
        if interval is not None:
            interval.save(tmp / INTERVAL_FILE)
        if baseline is not None:
            baseline.save(tmp / BASELINE_FILE)
    return target


PREDICTION_COLUMNS = ["house", "actual_price", "predicted_price", "error_pct", "price_low", "price_high",
                      "in_range"]


def prediction_rows(houses: np.ndarray, actual: np.ndarray, predicted: np.ndarray,
                    low: np.ndarray | None = None, high: np.ndarray | None = None,
                    explanation: Explanation | None = None) -> list[dict]:
    """One row per test house, the largest errors first: error_pct is (predicted - actual) / actual in %; with
    the range (price_low, price_high, in_range) and each input's effect when given."""
    error = (predicted - actual) / actual * 100
    rows, effects = [], explanation.rows() if explanation is not None else None
    for i in np.argsort(-np.abs(error), kind="stable"):
        row = {"house": int(houses[i]), "actual_price": round(float(actual[i]), 2),
               "predicted_price": round(float(predicted[i]), 2), "error_pct": round(float(error[i]), 2)}
        if low is not None and high is not None:
            row.update(price_low=round(float(low[i]), 0), price_high=round(float(high[i]), 0),
                       in_range=bool(low[i] <= actual[i] <= high[i]))
        if effects is not None:
            row.update({name: round(value, 0) for name, value in effects[i].items()})
        rows.append(row)
    return rows


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


def calibration(model_files: list[Path], dataset: Dataset, options: PriceOptions,
                folds: list[tuple[np.ndarray, np.ndarray]]) -> Interval:
    """The interval from out-of-fold prices of the train houses: fold i's model prices fold i's houses."""
    scale = TargetScale(options.target, dataset.encoders()["price_max"])
    actual, predicted = [], []
    for model_file, (_, held_out) in zip(model_files, folds):
        prices, priced = predict_prices(load_keras_model(model_file), dataset.train_path, options.strategy, scale,
                                        held_out)
        actual.append(prices)
        predicted.append(priced)
    return Interval.calibrate(np.concatenate(actual), np.concatenate(predicted), len(folds))


def evaluate_model(model_file: Path, done: dict, dataset: Dataset, options: PriceOptions, out: Path,
                   data_info: dict, cv_folds: list[dict] | None, interval: Interval | None = None,
                   level: float = DEFAULT_LEVEL) -> tuple[dict, Report]:
    """Test metrics, the naive baseline, the interval's coverage, explanations, plots, report.md, metrics.json and
    model/ under `out`; (metrics.json's content, the report to publish)."""
    encoders = dataset.encoders()
    scale = TargetScale(options.target, encoders["price_max"])
    model = load_keras_model(model_file)
    test = read_split(dataset.test_path, (*STRATEGY_INPUTS[options.strategy], "price", "house"))
    actual = test["price"]
    inputs = {name: test[name] for name in STRATEGY_INPUTS[options.strategy]}
    predicted = scale.to_price(model.predict(inputs, batch_size=256, verbose=0))
    baseline = Baseline.from_split(dataset.train_path)
    explanation = explain(lambda x: scale.to_price(model.predict(x, batch_size=CHUNK_ROWS, verbose=0)), inputs,
                          baseline, encoders["feature_names"])
    low, high = interval.bounds(predicted, level) if interval is not None else (None, None)
    rows = prediction_rows(test["house"], actual, predicted, low, high, explanation)
    columns = PREDICTION_COLUMNS if interval is not None else PREDICTION_COLUMNS[:4]
    write_csv(rows, columns + [f"effect_{name}" for name in explanation.players], out / "predictions.csv")
    ratios = top_price_ratios(actual, predicted)
    importance = explanation.importance()
    figures = {
        "loss per epoch": plots.plot_history(done["history"], out / "plots" / "loss.png",
                                             f"{options.loss} on the {options.target} target"),
        "predicted vs actual": plots.plot_predictions(actual, predicted, out / "plots" / "predicted_vs_actual.png"),
        "residuals": plots.plot_residuals(actual, predicted, out / "plots" / "residuals.png"),
        "what moves the prices": report.plot_importance(importance, len(actual), out / "plots" / "importance.png"),
    }
    metrics = {
        **regression_metrics(actual, predicted),
        "n_train": done["n_train"] + done["n_validation"], "n_validation": done["n_validation"],
        "n_test": len(actual), "strategy": options.strategy, "trainer": options.trainer,
        "epochs": done["epochs_run"], "best_epoch": done["best_epoch"], "seconds": round(done["seconds"], 2),
        "replicas": done["replicas"],
        "top5_price_ratios": ratios, "top5_price_ratio_median": float(np.median(ratios)),  # a ceiling shows low
        "interval": None if interval is None else interval_metrics(interval, actual, predicted, level),
        "importance": importance, "base_price": explanation.base_price,
    }
    naive = baseline_metrics(train_prices(dataset.train_path), actual)
    metrics["warning"] = worse_than_baseline(metrics, naive)
    cv = {**report.cv_summary(cv_folds), "k": len(cv_folds)} if cv_folds else None
    atomic_write_json(out / "metrics.json", {**metrics, "baseline": naive, "cv": cv})
    export_model(model_file, dataset, options, out / "model", interval, baseline)
    relative = {title: str(path.relative_to(out)) for title, path in figures.items()}
    position = {int(house): i for i, house in enumerate(test["house"])}
    worst = [{**row, "explanation": explanation_table(explanation, position[row["house"]])} for row in rows[:5]]
    text = report.train_report(metrics, naive, options.model_dump(mode="json"), data_info,
                               {"mean": float(actual.mean()), "std": float(actual.std())}, relative, cv,
                               worst)
    atomic_write_text(out / "report.md", text)
    table = [{"metric": METRIC_LABELS[n], "model": round(metrics[n], 4), "baseline": round(naive[n], 4)}
             for n in METRIC_NAMES]
    return {**metrics, "baseline": naive, "cv": cv}, Report("train", text, "Training report", table, "metrics",
                           f"{options.strategy}/{options.trainer} test metrics", figures, "plot", out)
