"""AutoML sweep points as Prefect tasks, each cached by data content + task + budget + search space.

Cache: `CACHE/automl/KEY/` (a `tasks.cache.Cache` entry: complete or absent) holds the point's
best model, result.json, trials.csv and plots. While a search runs, `CACHE/automl-work/KEY/`
holds its AutoKeras project and the seconds spent; a killed point started again resumes there,
and the work folder is removed once the entry is written.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks import sweep_options
from tasks.cache import Cache, atomic_write_bytes, atomic_write_json
from tasks.dataset import Dataset
from tasks.evaluate import markdown_table
from tasks.hashing import code_version, digest, file_sha256
from tasks.sweep_options import Budget, SearchSpace

STAGE, WORK = "automl", "automl-work"
TRIAL_COLUMNS = ["trial", "status", "val_loss", "best_epoch", "hyperparameters"]


@dataclass(frozen=True)
class PointData:
    """Where a point's data comes from: the preprocessed houses, or an image folder for `classify`."""

    dataset: Dataset
    classify_folder: Path | None = None
    test_size: float = 0.25

    def content_key(self, sweep_task: str) -> str:
        if sweep_task == "classify" and self.classify_folder is not None:
            from tasks.automl import scan_image_folder

            files = [(str(path.relative_to(self.classify_folder)), file_sha256(path))
                     for path, _ in scan_image_folder(self.classify_folder)]
            return digest("image-folder", files, self.dataset.tile_size, self.test_size)
        return self.dataset.folder.name


def point_key(data: PointData, sweep_task: str, budget: Budget, space: SearchSpace) -> str:
    from tasks import automl

    return digest(STAGE, data.content_key(sweep_task), sweep_task, budget.model_dump(), space.model_dump(),
                  code_version(automl, sweep_options))


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def limit_threads(threads: int | None, log) -> None:
    """TensorFlow's thread pools for this process (a Dask worker runs one point at a time)."""
    if not threads:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        log.info("TensorFlow limited to %d thread(s) in this process", threads)
    except RuntimeError:
        log.info("TensorFlow already started in this process; keeping its thread settings")


def _load(data: PointData, sweep_task: str, space: SearchSpace):
    from tasks import automl

    if sweep_task != "classify":
        return automl.regression_data(data.dataset, sweep_task, space)
    if data.classify_folder is not None:
        return automl.folder_data(data.classify_folder, data.dataset.tile_size, data.test_size, space)
    return automl.room_type_data(data.dataset, space)


def search_point(cache_dir: Path, data: PointData, sweep_task: str, budget: Budget, space: SearchSpace,
                 log) -> tuple[Path, dict, bool]:
    """(cache entry, result, reused): search, evaluate on the test split and store, unless stored."""
    from tasks import automl, evaluate

    cache, key = Cache(cache_dir), point_key(data, sweep_task, budget, space)
    hit = cache.lookup(STAGE, key)
    if hit is not None:
        log.info("Reusing AutoML point %s/%s (same data, budget, search space and code)", sweep_task, budget.name)
        return hit, json.loads((hit / "result.json").read_text()), True
    task_data = _load(data, sweep_task, space)
    log.info("AutoML %s, budget %s: %d to search, %d validation, %d test samples", sweep_task, budget.name,
             len(task_data.y_fit), len(task_data.y_val), len(task_data.y_test))
    work = cache_dir / WORK / key
    found = automl.run_search(sweep_task, task_data, budget, space, work, log)
    predicted = automl.predict(found.model, task_data.x_test)
    result = {"task": sweep_task, "budget": budget.model_dump() | {"name": budget.name},
              "search_space": space.model_dump(), "seconds": round(found.seconds, 2),
              "stopped_by_deadline": found.stopped_by_deadline, "resumed_trials": found.resumed_trials,
              "trials_run": len(found.trials),
              "best_val_loss": min((t["val_loss"] for t in found.trials if t["val_loss"] is not None), default=None),
              "n_search": len(task_data.y_fit), "n_validation": len(task_data.y_val), "n_test": len(task_data.y_test)}
    with cache.write(STAGE, key) as tmp:
        automl.save_model(found.model, tmp / "best.keras")
        evaluate.write_csv([{**t, "hyperparameters": json.dumps(t["hyperparameters"], sort_keys=True)}
                            for t in found.trials], TRIAL_COLUMNS, tmp / "trials.csv")
        if sweep_task in sweep_options.REGRESSION_TASKS:
            prices = task_data.to_price(predicted)
            result["metrics"] = evaluate.regression_metrics(task_data.y_test, prices)
            result["target"] = {"kind": "standardized log price", "log_mean": task_data.log_mean,
                                "log_std": task_data.log_std}
            evaluate.plot_predictions(task_data.y_test, prices, tmp / "predicted_vs_actual.png")
        else:
            metrics = evaluate.classification_metrics(task_data.y_test, predicted.argmax(axis=1), task_data.classes)
            atomic_write_bytes(tmp / "classification_report.txt", metrics.pop("report_text").encode())
            result["metrics"] = metrics
            evaluate.plot_confusion(metrics["confusion"], task_data.classes, tmp / "confusion.png")
        atomic_write_json(tmp / "result.json", result)
    shutil.rmtree(work, ignore_errors=True)
    return cache.entry_path(STAGE, key), result, False


def score_of(result: dict) -> tuple[str, float]:
    metrics = result["metrics"]
    return ("accuracy", metrics["accuracy"]) if "accuracy" in metrics else ("mape_mean", metrics["mape_mean"])


def point_markdown(result: dict, trials_csv: str) -> str:
    metric, score = score_of(result)
    budget = result["budget"]
    lines = [f"# AutoML {result['task']}, budget {budget['name']}", "",
             f"- limit {budget['seconds']:g} s, at most {budget['max_trials']} trials of {budget['epochs']} epochs",
             f"- spent {result['seconds']:.1f} s on {result['trials_run']} trial(s)"
             + (" (stopped by the wall-clock limit)" if result["stopped_by_deadline"] else ""),
             f"- test {metric}: **{score:.4g}** on {result['n_test']} samples", ""]
    rows = list(csv.DictReader(io.StringIO(trials_csv)))
    lines.append(markdown_table(rows, TRIAL_COLUMNS[:-1]))
    return "\n".join(lines) + "\n"


@task(name="automl-point", cache_policy=NO_CACHE, task_run_name="automl-{sweep_task}-{budget.name}", tags=["automl"])
def automl_point_task(cache_dir: Path, data: PointData, sweep_task: str, budget: Budget, space: SearchSpace,
                      out: Path, threads: int | None) -> dict:
    """One budget point: search (or resume, or reuse), copy its files to OUT/points/TASK-BUDGET."""
    log = get_run_logger()
    limit_threads(threads, log)
    entry, result, reused = search_point(cache_dir, data, sweep_task, budget, space, log)
    target = out / "points" / f"{sweep_task}-{budget.name}"
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(entry, tmp, ignore=shutil.ignore_patterns("_entry.json"))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    create_markdown_artifact(point_markdown(result, (target / "trials.csv").read_text()),
                             key=artifact_key("automl", sweep_task, budget.name),
                             description=f"AutoML {sweep_task} at budget {budget.name}")
    metric, score = score_of(result)
    log.info("AutoML %s %s: test %s %.4g after %.0f s, %d trial(s)%s", sweep_task, budget.name, metric, score,
             result["seconds"], result["trials_run"], " (reused)" if reused else "")
    return {"task": sweep_task, "kind": "automl", "budget": budget.name, "seconds_limit": budget.seconds,
            "max_trials": budget.max_trials, "epochs": budget.epochs, "trials_run": result["trials_run"],
            "seconds": result["seconds"], "stopped_by_deadline": result["stopped_by_deadline"], "reused": reused,
            "metric": metric, "score": score, "model": str(target / "best.keras")}
