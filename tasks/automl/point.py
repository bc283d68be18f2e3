"""One sweep point (task x budget): its data, its cache key, the search (or its reuse), the test
evaluation and the files it keeps; and the leaderboard row of a point or of a hand-built model.

Cache: `CACHE/automl/KEY/` (a `tasks.core.cache.Cache` entry: complete or absent) holds the point's
best model, result.json, trials.csv and plots. While a search runs, `CACHE/automl-work/KEY/`
holds its AutoKeras project and the seconds spent; a killed point started again resumes there,
and the work folder is removed once the entry is written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from tasks.automl import options
from tasks.automl.options import Budget, SearchSpace
from tasks.core.cache import Cache
from tasks.core.files import atomic_write_bytes, atomic_write_json, replacing_folder
from tasks.core.hashing import code_version, digest, file_sha256
from tasks.core.locks import exclusive
from tasks.core.prefect_cache import cacheable
from tasks.core.tables import write_csv
from tasks.houses.dataset import Dataset

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
            from tasks.automl.data import scan_image_folder

            files = [(str(path.relative_to(self.classify_folder)), file_sha256(path))
                     for path, _ in scan_image_folder(self.classify_folder)]
            return digest("image-folder", files, self.dataset.tile_size, self.test_size)
        return self.dataset.folder.name


def point_key(data: PointData, sweep_task: str, budget: Budget, space: SearchSpace) -> str:
    from tasks.automl import data as task_data
    from tasks.automl import search

    return digest(STAGE, data.content_key(sweep_task), sweep_task, budget.model_dump(), space.model_dump(),
                  code_version(task_data, search, options))


def limit_threads(threads: int | None, log: logging.Logger | logging.LoggerAdapter) -> None:
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


def load_task_data(data: PointData, sweep_task: str, space: SearchSpace):
    from tasks.automl import data as task_data

    if sweep_task != "classify":
        return task_data.regression_data(data.dataset, sweep_task, space.validation_fraction, space.seed)
    if data.classify_folder is not None:
        return task_data.folder_data(data.classify_folder, data.dataset.tile_size, data.test_size,
                                     space.validation_fraction, space.seed)
    return task_data.room_type_data(data.dataset, space.validation_fraction, space.seed)


@cacheable
@dataclass(frozen=True)
class SearchedPoint:
    """A point's search as the cached Prefect task returns it: its cache entry and result."""

    entry: Path
    result: dict
    reused: bool

    def replayed(self) -> SearchedPoint:
        return dataclasses.replace(self, reused=True)


def point_entry(cache_dir: Path, data: PointData, sweep_task: str, budget: Budget,
                space: SearchSpace) -> tuple[str, bool]:
    """(the point's content key, whether its entry is complete and verified)."""
    key = point_key(data, sweep_task, budget, space)
    return key, Cache(cache_dir).lookup(STAGE, key) is not None


def search_point(cache_dir: Path, data: PointData, sweep_task: str, budget: Budget, space: SearchSpace,
                 log: logging.Logger | logging.LoggerAdapter, refresh: bool = False) -> tuple[Path, dict, bool]:
    """(cache entry, result, reused): search, evaluate on the test split and store, unless stored. One run
    at a time per point: a second sweep computing the same point waits, then reuses the first one's."""
    cache, key = Cache(cache_dir, log, refresh), point_key(data, sweep_task, budget, space)
    with exclusive(cache.root / "locks" / f"{STAGE}-{key}.lock", f"AutoML point {sweep_task}/{budget.name}", log):
        hit = cache.lookup(STAGE, key)
        if hit is not None:
            log.info("Reusing AutoML point %s/%s (same data, budget, search space and code)", sweep_task,
                     budget.name)
            return hit, json.loads((hit / "result.json").read_text()), True
        entry = _search_and_store(cache, key, data, sweep_task, budget, space, log)
        return entry, json.loads((entry / "result.json").read_text()), False


def _search_and_store(cache: Cache, key: str, data: PointData, sweep_task: str, budget: Budget, space: SearchSpace,
                      log: logging.Logger | logging.LoggerAdapter) -> Path:
    """Search within the budget, evaluate the best model on the test split, store the entry; its folder."""
    from tasks.automl import search
    from tasks.training import metrics, plots

    task_data = load_task_data(data, sweep_task, space)
    log.info("AutoML %s, budget %s: %d to search, %d validation, %d test samples", sweep_task, budget.name,
             len(task_data.y_fit), len(task_data.y_val), len(task_data.y_test))
    work = cache.root / WORK / key
    hand_built = None
    if sweep_task in options.REGRESSION_TASKS and space.hand_built_seed:
        from tasks.automl.seed import SEED_SHARE, train_seed

        hand_built = train_seed(sweep_task, task_data, data.dataset, space.seed, budget.seconds * SEED_SHARE,
                                work / "hand-built", log)
    seeded = hand_built is not None and hand_built.model is not None
    found = search.run_search(sweep_task, task_data, budget, space, work, log,
                              spent=hand_built.seconds if hand_built else 0.0, need_a_trial=not seeded)
    searched_loss = min((t["val_loss"] for t in found.trials if t["val_loss"] is not None), default=None)
    seed_won = seeded and (found.model is None or searched_loss is None or hand_built.val_loss <= searched_loss)
    best_model = hand_built.model if seed_won else found.model
    trials = ([hand_built.trial_row()] if hand_built else []) + found.trials
    result = {"task": sweep_task, "budget": budget.model_dump() | {"name": budget.name},
              "search_space": space.model_dump(), "seconds": round(found.seconds, 2),
              "stopped_by_deadline": found.stopped_by_deadline, "resumed_trials": found.resumed_trials,
              "trials_run": len(found.trials),
              "best_val_loss": min((t["val_loss"] for t in trials if t["val_loss"] is not None), default=None),
              "best": f"hand-built {hand_built.strategy}" if seed_won else "autokeras",
              "hand_built_val_loss": hand_built.val_loss if hand_built else None,
              "n_search": len(task_data.y_fit), "n_validation": len(task_data.y_val), "n_test": len(task_data.y_test)}
    with cache.write(STAGE, key) as tmp:
        search.save_model(best_model, tmp / "best.keras")
        write_csv([{**t, "hyperparameters": json.dumps(t["hyperparameters"], sort_keys=True)} for t in trials],
                  TRIAL_COLUMNS, tmp / "trials.csv")
        if sweep_task in options.REGRESSION_TASKS:
            if seed_won:  # the hand-built model's own inputs (a dict) and target
                prices = hand_built.test_prices(data.dataset)
                result["target"] = {"kind": f"hand-built {hand_built.strategy}: {hand_built.options.target} price",
                                    "price_max": data.dataset.encoders()["price_max"]}
            else:
                prices = task_data.to_price(search.predict(best_model, task_data.x_test))
                result["target"] = {"kind": "standardized log price", "log_mean": task_data.log_mean,
                                    "log_std": task_data.log_std}
            result["metrics"] = metrics.regression_metrics(task_data.y_test, prices)
            plots.plot_predictions(task_data.y_test, prices, tmp / "predicted_vs_actual.png")
        else:
            predicted = search.predict(best_model, task_data.x_test)
            scores = metrics.classification_metrics(task_data.y_test, predicted.argmax(axis=1), task_data.classes)
            atomic_write_bytes(tmp / "classification_report.txt", scores.pop("report_text").encode())
            result["metrics"] = scores
            plots.plot_confusion(scores["confusion"], task_data.classes, tmp / "confusion.png")
        atomic_write_json(tmp / "result.json", result)
    shutil.rmtree(work, ignore_errors=True)
    return cache.entry_path(STAGE, key)


def copy_point(entry: Path, target: Path) -> Path:
    """The point's files (not the cache listing) into OUT/points/TASK-BUDGET, replaced in one step."""
    with replacing_folder(target) as tmp:
        for path in entry.iterdir():
            if path.is_dir():
                shutil.copytree(path, tmp / path.name)
            elif path.name != "_entry.json":
                shutil.copyfile(path, tmp / path.name)
    return target


def score_of(result: dict) -> tuple[str, float]:
    metrics = result["metrics"]
    return ("accuracy", metrics["accuracy"]) if "accuracy" in metrics else ("mape_mean", metrics["mape_mean"])


def point_row(sweep_task: str, budget: Budget, result: dict, reused: bool, model: Path) -> dict:
    """A point's leaderboard row."""
    metric, score = score_of(result)
    return {"task": sweep_task, "kind": "automl", "budget": budget.name, "seconds_limit": budget.seconds,
            "max_trials": budget.max_trials, "epochs": budget.epochs, "trials_run": result["trials_run"],
            "kept": result.get("best", "autokeras"),
            "seconds": result["seconds"], "stopped_by_deadline": result["stopped_by_deadline"], "reused": reused,
            "metric": metric, "score": score, "model": str(model)}


def hand_built_row(sweep_task: str, strategy: str, epochs: int, metrics: dict, model: Path) -> dict:
    """A hand-built model's leaderboard row, beside the points of the same task."""
    return {"task": sweep_task, "kind": "hand-built", "budget": strategy, "epochs": epochs,
            "seconds": metrics["seconds"], "reused": "", "metric": "mape_mean", "score": metrics["mape_mean"],
            "model": str(model)}
