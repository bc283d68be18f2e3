"""Price-model training, cross-validation, evaluation and the leaderboard as Prefect tasks.

Cache: the work folder `CACHE/train/KEY` is keyed by the dataset's content key, the training
options and the code version. It holds the per-epoch checkpoint (for resume) and, once training
has finished, `done.json`: a finished entry is reused without training again. Training and
cross-validation tell Prefect about it (`tasks.core.prefect_cache`): a re-run shows them `Cached`
while every model they used is finished and verified.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.core import storage
from tasks.core.artifacts import publish, publish_markdown
from tasks.core.hashing import code_version, digest
from tasks.core.prefect_cache import cached, refreshing
from tasks.core.splits import group_kfold_rows
from tasks.core.storage import shown
from tasks.houses.arrays import read_split
from tasks.houses.dataset import Dataset
from tasks.price import data, evaluate, gbm, interval, leaderboard, models, train
from tasks.price.options import PriceOptions
from tasks.training import augment, backbones, engine, layers, schedules, streams
from tasks.training.progress import finished_training, progress_reporter, reuse_or_train


def price_code_version() -> str:
    """The version of the code that trains a price model (part of every training's key)."""
    return code_version(models, backbones, train, data, engine, streams, augment, layers, schedules)


def training_key(dataset: Dataset, options: PriceOptions, rows: np.ndarray | None = None) -> str:
    return digest("train", dataset.folder.name, options.model_dump(mode="json"), price_code_version(),
                  None if rows is None else rows.tolist())


def training_folder(cache_dir: Path, dataset: Dataset, options: PriceOptions, rows: np.ndarray | None = None) -> Path:
    return storage.localized(Path(cache_dir)) / "train" / training_key(dataset, options, rows)


def train_or_reuse(cache_dir: Path, dataset: Dataset, options: PriceOptions, rows: np.ndarray | None = None,
                   progress_key: str | None = None) -> tuple[Path, dict]:
    """(work folder, done.json) for these options, training or resuming only when needed."""
    log = get_run_logger()
    folder = training_folder(cache_dir, dataset, options, rows)
    if options.ensemble > 1:  # each member is a training of its own: cached, resumable, shared with single runs
        members = [train_or_reuse(cache_dir, dataset, member, rows, progress_key)
                   for member in train.member_options(options)]
        return reuse_or_train(folder, "ensemble", lambda: train.assemble_ensemble(
            [f / "model.keras" for f, _ in members], [done for _, done in members], folder), log, refreshing())
    return reuse_or_train(folder, "model", lambda: train.train_model(
        dataset.train_path, dataset.encoders(), options, folder, log, progress_reporter(log, progress_key), rows),
        log, refreshing())


def fold_rows(dataset: Dataset, options: PriceOptions, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds of the train houses, each duplicate group wholly in one fold (cross-validation and the
    interval's calibration share them, and so their trainings)."""
    groups = read_split(dataset.train_path, ("group",))["group"]
    return group_kfold_rows(dataset.n_train, k, options.seed, groups)


def _train_entry(inputs: dict) -> tuple[str, bool]:
    folder = training_folder(inputs["cache_dir"], inputs["dataset"], inputs["options"])
    return folder.name, finished_training(folder)[0] is not None


def _cv_entry(inputs: dict) -> tuple[str, bool]:
    folders = [training_folder(inputs["cache_dir"], inputs["dataset"], inputs["options"], fit_rows)
               for fit_rows, _ in fold_rows(inputs["dataset"], inputs["options"], inputs["k"])]
    return (digest("cross-validate", [f.name for f in folders]),
            all(finished_training(f)[0] is not None for f in folders))


@task(**cached("train", _train_entry), timeout_seconds=24 * 3600, tags=["training"])
def train_task(cache_dir: Path, dataset: Dataset, options: PriceOptions, progress_key: str | None) -> tuple:
    """Train (or resume, or reuse) one model on the train split: (work folder, training summary)."""
    return train_or_reuse(cache_dir, dataset, options, progress_key=progress_key)


@task(**cached("cross-validate", _cv_entry), timeout_seconds=24 * 3600, tags=["training"])
def cross_validate_task(cache_dir: Path, dataset: Dataset, options: PriceOptions, k: int) -> list[dict]:
    """K-fold CV by house on the train split: each fold's metrics on its held-out houses."""
    results = []
    for i, (fit_rows, held_out) in enumerate(fold_rows(dataset, options, k)):
        get_run_logger().info("Cross-validation fold %d/%d: %d houses to train, %d held out",
                              i + 1, k, len(fit_rows), len(held_out))
        folder, _ = train_or_reuse(cache_dir, dataset, options, rows=fit_rows)
        results.append(evaluate.fold_metrics(folder / "model.keras", dataset, options, held_out))
    return results


def _fold_entry(inputs: dict) -> tuple[str, bool]:
    fit_rows, _ = fold_rows(inputs["dataset"], inputs["options"], inputs["k"])[inputs["fold"]]
    folder = training_folder(inputs["cache_dir"], inputs["dataset"], inputs["options"], fit_rows)
    return digest("cross-validate-fold", folder.name), finished_training(folder)[0] is not None


@task(**cached("cross-validate-fold", _fold_entry), timeout_seconds=24 * 3600, tags=["training"],
      task_run_name="cross-validate-fold-{fold}")
def cross_validate_fold_task(cache_dir: Path, dataset: Dataset, options: PriceOptions, k: int, fold: int) -> dict:
    """One fold of K-fold CV (on a cluster worker): train on the other folds' houses, metrics on this one's."""
    fit_rows, held_out = fold_rows(dataset, options, k)[fold]
    folder, _ = train_or_reuse(cache_dir, dataset, options, rows=fit_rows)
    return evaluate.fold_metrics(folder / "model.keras", dataset, options, held_out)


def _calibration_entry(inputs: dict) -> tuple[str, bool]:
    folders = [training_folder(inputs["cache_dir"], inputs["dataset"], inputs["options"], fit_rows)
               for fit_rows, _ in fold_rows(inputs["dataset"], inputs["options"], inputs["k"])]
    return (digest("calibrate-interval", [f.name for f in folders], code_version(interval, evaluate)),
            all(finished_training(f)[0] is not None for f in folders))


@task(**cached("calibrate-interval", _calibration_entry), timeout_seconds=24 * 3600, tags=["training"])
def calibrate_task(cache_dir: Path, dataset: Dataset, options: PriceOptions, k: int) -> dict:
    """The price range's calibration: K fold models (the trainings of `--cv K`, shared) price their held-out
    train houses; their |log(actual / predicted)| (interval.json's content)."""
    folds = fold_rows(dataset, options, k)
    models = []
    for i, (fit_rows, held_out) in enumerate(folds):
        get_run_logger().info("Interval calibration fold %d/%d: %d houses to train, %d held out", i + 1, k,
                              len(fit_rows), len(held_out))
        folder, _ = train_or_reuse(cache_dir, dataset, options, rows=fit_rows)
        models.append(folder / "model.keras")
    return evaluate.calibration(models, dataset, options, folds).to_json()


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate_task(trained: tuple[Path, dict], dataset: Dataset, options: PriceOptions, out: Path,
                  data_info: dict, cv_folds: list[dict] | None, calibrated: dict | None = None,
                  level: float = interval.DEFAULT_LEVEL) -> dict:
    """Test metrics, baseline, the range's coverage, explanations, plots, report.md, metrics.json and the exported
    model; as artifacts too."""
    folder, done = trained
    metrics, report = evaluate.evaluate_model(folder / "model.keras", done, dataset, options, out, data_info,
                                              cv_folds, interval.Interval.from_json(calibrated) if calibrated
                                              else None, level)
    publish(report)
    covered = metrics["interval"]
    get_run_logger().info("Test MAPE %.2f %% (baseline %.2f %%)%s; report: %s", metrics["mape_mean"],
                          metrics["baseline"]["mape_mean"], "" if covered is None else
                          f"; the {covered['level'] * 100:g} % range covers {covered['coverage'] * 100:.1f} % of "
                          f"the test houses (mean width ${covered['mean_width']:,.0f})",
                          shown(out.resolve() / "report.md"))
    if metrics["warning"]:
        get_run_logger().warning("This model is worse than no model: %s. Try other seeds, --ensemble N or another "
                                 "strategy", metrics["warning"])
    return metrics


@task(name="gbm-baseline", cache_policy=NO_CACHE)
def gbm_baseline_task(dataset: Dataset) -> dict:
    """The tree baseline's test metrics (refitted in a second: it is not exported)."""
    row = gbm.leaderboard_row(dataset)
    get_run_logger().info("Tree baseline (gbm): test MAPE %.2f %%", row["mape_mean"])
    return row


@task(name="leaderboard", cache_policy=NO_CACHE)
def leaderboard_task(rows: list[dict], out: Path, title: str) -> dict:
    """Rank the configurations by test MAPE; write markdown, CSV and plot."""
    paths = leaderboard.write_price_leaderboard(rows, out, title)
    publish_markdown(paths["markdown"].read_text(), "leaderboard", title, out)
    return {name: str(path) for name, path in paths.items()}
