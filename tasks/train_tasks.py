"""Training and evaluation as Prefect tasks, with per-epoch progress in the UI.

Cache: the work folder `CACHE/train/KEY` is keyed by the dataset's content key, the training
options and the code version. It holds the per-epoch checkpoint (for resume) and, once training
has finished, `done.json`: a finished entry is reused without training again.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from prefect import task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks import backbones, models, train, training_data
from tasks.cache import atomic_write_json, replacing_folder
from tasks.dataset import Dataset
from tasks.hashing import code_version, digest
from tasks.training_options import TrainingOptions


def training_key(dataset: Dataset, options: TrainingOptions, rows: np.ndarray | None = None) -> str:
    return digest("train", dataset.folder.name, options.model_dump(mode="json"),
                  code_version(models, backbones, train, training_data), None if rows is None else rows.tolist())


def progress_reporter(log, artifact_key: str | None):
    artifact_id = create_progress_artifact(0.0, key=artifact_key, description="Training progress (% of epochs)") \
        if artifact_key else None

    def report(epoch: int, epochs: int, logs: dict) -> None:
        shown = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
        log.info("Epoch %d/%d: %s", epoch, epochs, shown)
        if artifact_id is not None:
            update_progress_artifact(artifact_id, progress=100.0 * epoch / epochs)

    return report


def reuse_or_train(folder: Path, what: str, run: Callable[[], train.TrainResult]) -> tuple[Path, dict]:
    """(work folder, done.json): a finished training in `folder` is reused; otherwise `run()` trains
    (or resumes from the folder's checkpoint) and done.json records it."""
    done = folder / "done.json"
    if done.is_file() and (folder / "model.keras").is_file():
        get_run_logger().info("Reusing the trained %s %s (same data, options and code)", what, folder.name[:12])
        return folder, json.loads(done.read_text())
    summary = run().summary()
    atomic_write_json(done, summary)
    return folder, summary


def train_or_reuse(cache_dir: Path, dataset: Dataset, options: TrainingOptions, rows: np.ndarray | None = None,
                   progress_key: str | None = None) -> tuple[Path, dict]:
    """(model folder, done.json) for these options, training or resuming only when needed."""
    log = get_run_logger()
    folder = cache_dir / "train" / training_key(dataset, options, rows)
    return reuse_or_train(folder, "model", lambda: train.train_model(
        dataset.train_path, dataset.encoders(), options, folder, log, progress_reporter(log, progress_key), rows))


@task(name="train", cache_policy=NO_CACHE, timeout_seconds=24 * 3600, tags=["training"])
def train_task(cache_dir: Path, dataset: Dataset, options: TrainingOptions, progress_key: str | None) -> tuple:
    """Train (or resume, or reuse) one model on the train split."""
    return train_or_reuse(cache_dir, dataset, options, progress_key=progress_key)


@task(name="cross-validate", cache_policy=NO_CACHE, timeout_seconds=24 * 3600, tags=["training"])
def cross_validate_task(cache_dir: Path, dataset: Dataset, options: TrainingOptions, k: int) -> list[dict]:
    """K-fold CV by house on the train split: each fold's metrics on its held-out houses."""
    import keras

    from tasks.evaluate import regression_metrics

    scale = training_data.TargetScale(options.target, dataset.encoders()["price_max"])
    results = []
    for i, (fit_rows, held_out) in enumerate(train.kfold_rows(dataset.n_train, k, options.seed)):
        get_run_logger().info("Cross-validation fold %d/%d: %d houses to train, %d held out",
                              i + 1, k, len(fit_rows), len(held_out))
        folder, _ = train_or_reuse(cache_dir, dataset, options, rows=fit_rows)
        model = keras.models.load_model(folder / "model.keras", safe_mode=True)
        actual, predicted = train.predict_prices(model, dataset.train_path, options.strategy, scale, held_out)
        results.append(regression_metrics(actual, predicted))
    return results


def export_model(folder: Path, dataset: Dataset, options: TrainingOptions, target: Path) -> Path:
    """model.keras + encoders.json + training.json: all `predict` needs, no pickle."""
    with replacing_folder(target) as tmp:
        shutil.copyfile(folder / "model.keras", tmp / "model.keras")
        shutil.copyfile(dataset.encoders_path, tmp / "encoders.json")
        atomic_write_json(tmp / "training.json", {"options": options.model_dump(mode="json"),
                                                  "target": {"kind": options.target,
                                                             "price_max": dataset.encoders()["price_max"]}})
    return target


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(trained: tuple[Path, dict], dataset: Dataset, options: TrainingOptions, out: Path,
                  data_info: dict, cv_folds: list[dict] | None) -> dict:
    """Test metrics, baseline, plots, report.md, metrics.json, the exported model; as artifacts too.
    `trained` is train_task's (model folder, training summary)."""
    import keras
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    from tasks import evaluate, report

    folder, done = trained
    encoders = dataset.encoders()
    scale = training_data.TargetScale(options.target, encoders["price_max"])
    model = keras.models.load_model(folder / "model.keras", safe_mode=True)
    actual, predicted = train.predict_prices(model, dataset.test_path, options.strategy, scale)
    train_prices = training_data.load_arrays(dataset.train_path, "mlp", scale)[2]
    out.mkdir(parents=True, exist_ok=True)
    plots = {
        "loss per epoch": evaluate.plot_history(done["history"], out / "plots" / "loss.png",
                                                f"{options.loss} on the {options.target} target"),
        "predicted vs actual": evaluate.plot_predictions(actual, predicted, out / "plots" / "predicted_vs_actual.png"),
        "residuals": evaluate.plot_residuals(actual, predicted, out / "plots" / "residuals.png"),
    }
    metrics = {
        **evaluate.regression_metrics(actual, predicted),
        "n_train": done["n_train"] + done["n_validation"], "n_validation": done["n_validation"],
        "n_test": len(actual), "strategy": options.strategy, "trainer": options.trainer,
        "epochs": done["epochs_run"], "best_epoch": done["best_epoch"], "seconds": round(done["seconds"], 2),
        "replicas": done["replicas"],
    }
    baseline = evaluate.baseline_metrics(train_prices, actual)
    cv = {**report.cv_summary(cv_folds), "k": len(cv_folds)} if cv_folds else None
    atomic_write_json(out / "metrics.json", {**metrics, "baseline": baseline, "cv": cv})
    export_model(folder, dataset, options, out / "model")
    relative = {title: str(path.relative_to(out)) for title, path in plots.items()}
    text = report.train_report(metrics, baseline, options.model_dump(mode="json"), data_info,
                               {"mean": float(actual.mean()), "std": float(actual.std())}, relative, cv)
    (out / "report.md").write_text(text)
    create_table_artifact([{"metric": report.METRIC_LABELS[n], "model": round(metrics[n], 4),
                            "baseline": round(baseline[n], 4)} for n in evaluate.METRIC_NAMES],
                          key="train-metrics", description=f"{options.strategy}/{options.trainer} test metrics")
    create_markdown_artifact(text, key="train-report", description="Training report")
    for title, path in plots.items():
        create_link_artifact(path.resolve().as_uri(), link_text=title, key=f"plot-{path.stem.replace('_', '-')}")
    get_run_logger().info("Test MAPE %.2f %% (baseline %.2f %%); report: %s", metrics["mape_mean"],
                          baseline["mape_mean"], (out / "report.md").resolve())
    return metrics
