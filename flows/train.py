"""The train flow: preprocess (subflow, cached) -> train (cached, resumable) -> [cross-validate] -> evaluate."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from flows.config import RunOptions, TrainConfig, run_parameter
from flows.preprocess import preprocess_flow
from tasks.core.prefect_cache import with_results_in
from tasks.price.prefect_tasks import cross_validate_task, evaluate_task, train_task


def _run_name() -> str:
    data = str(run_parameter("data")).rstrip("/").rsplit("/", 1)[-1]
    return f"train-{run_parameter('strategy')}-{run_parameter('trainer')}-{data}-{datetime.now():%Y%m%d-%H%M%S}"


@flow(name="train", flow_run_name=_run_name)
def train_flow(config: TrainConfig) -> dict:
    """Train one model on the houses and write its report under `config.out`."""
    config.check_paths()
    preprocessed = preprocess_flow(config.preprocess_config())
    dataset, options = preprocessed.dataset, config.training_options()
    train, cross_validate = (with_results_in(t, config.cache, config.refresh_cache)
                             for t in (train_task, cross_validate_task))
    trained = train(config.cache, dataset, options, progress_key="train-progress")
    folds = cross_validate(config.cache, dataset, options, config.cv) if config.cv else None
    return evaluate_task(trained, dataset, options, config.out, data_info(config, preprocessed.summary), folds)


def data_info(config: RunOptions, summary: dict) -> dict:
    """What a report says about the data, from the preprocessing summary of this run."""
    return {"source": config.data, "houses_read": summary["houses_read"], "houses_kept": summary["houses_kept"],
            "zipcodes_kept": summary["zipcodes_kept"], "min_houses_per_zip": config.min_houses_per_zip,
            "split_seed": config.split_seed}
