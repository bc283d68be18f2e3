"""The compare flow: one preprocessing, then train + evaluate per strategy x trainer, then a leaderboard."""

from __future__ import annotations

import itertools
from datetime import datetime

from prefect import flow
from prefect.context import get_run_context

from flows.config import CompareConfig
from flows.preprocess import preprocess_flow
from flows.run_folder import staged
from flows.train import data_info
from tasks.core.cluster import cluster_task_runner
from tasks.core.prefect_cache import with_results_in
from tasks.houses.dataset import Dataset
from tasks.lifecycle.prefect_tasks import record_run_task
from tasks.price.options import PriceOptions
from tasks.price.prefect_tasks import (
    calibrate_task,
    evaluate_task,
    gbm_baseline_task,
    leaderboard_task,
    train_task,
)


@flow(name="compare-configurations",
      flow_run_name=lambda: f"compare-configurations-{datetime.now():%Y%m%d-%H%M%S}")
def configurations_flow(config: CompareConfig, dataset: Dataset, configurations: list[PriceOptions]) -> list[tuple]:
    """Train each configuration, and the trainings that calibrate its interval, on this flow's task runner:
    `max_parallel` threads of this process, or the workers of a Dask cluster (a training per worker process, each
    with its share of the cores). (trained, interval) per configuration."""
    # Worker threads and processes: Prefect cannot enforce a task timeout there (it would only warn);
    # --time-limit is enforced inside training instead.
    train = with_results_in(train_task, config.cache, config.refresh_cache).with_options(timeout_seconds=None)
    calibrate = with_results_in(calibrate_task, config.cache, config.refresh_cache).with_options(timeout_seconds=None)
    trained = [train.submit(config.cache, dataset, options, None) for options in configurations]
    calibrated = [calibrate.submit(config.cache, dataset, options, config.interval_folds) for options in configurations]
    for future in trained + calibrated:  # every training ends before the first error is raised: none is left running
        future.wait()
    return [(done.result(), interval.result()) for done, interval in zip(trained, calibrated)]


@flow(name="compare", flow_run_name=lambda: f"compare-{datetime.now():%Y%m%d-%H%M%S}")
def compare_flow(config: CompareConfig) -> list[dict]:
    """Train every strategy x trainer on one split, `max_parallel` at once; rank them."""
    config.check_paths()
    tracker = config.tracker()  # an unreachable store stops the run here, before any work
    with staged(config) as config:
        preprocessed = preprocess_flow(config.preprocess_config())
        info = data_info(config, preprocessed.summary)
        names = [f"{strategy}/{trainer}" for strategy, trainer in itertools.product(config.strategies, config.trainers)]
        configurations = [config.training_options(*name.split("/")) for name in names]
        runner = cluster_task_runner(config.workers, config.dask_address, get_run_context().client.api_url,
                                     threads=config.max_parallel)
        trained = configurations_flow.with_options(task_runner=runner)(config, preprocessed.dataset, configurations)
        rows = [{"name": name, **evaluate_task(done, preprocessed.dataset, options,
                                               config.out / name.replace("/", "-"), info, None, interval,
                                               config.interval_level),
                 "history": done[1]["history"]}
                for name, options, (done, interval) in zip(names, configurations, trained)]
        tags = {"dataset.cache_key": preprocessed.dataset.folder.name, "compare": config.out.name}
        for row in rows:  # one MLflow run per configuration, tagged with the compare run
            folder = config.out / row["name"].replace("/", "-")
            record_run_task(tracker, "house-prices-compare", f"{config.out.name}-{row['name']}",
                            {**config.model_dump(mode="json"), "strategy": row["strategy"], "trainer": row["trainer"]},
                            row, row.pop("history"), tags,
                            {"report": folder / "report.md", "report/plots": folder / "plots"})
        board = rows + ([gbm_baseline_task(preprocessed.dataset)] if config.gbm_baseline else [])
        leaderboard_task(board, config.out, f"Compare on {info['houses_kept']} houses")
        return board
