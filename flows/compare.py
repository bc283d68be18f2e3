"""The compare flow: one preprocessing, then train + evaluate per strategy x trainer, then a leaderboard."""

from __future__ import annotations

import itertools
from datetime import datetime

from prefect import flow

from flows.config import CompareConfig
from flows.preprocess import preprocess_flow
from flows.run_folder import staged
from flows.train import data_info
from tasks.core.prefect_cache import with_results_in
from tasks.core.runners import StoppingThreadPoolTaskRunner
from tasks.houses.dataset import Dataset
from tasks.lifecycle.prefect_tasks import record_run_task
from tasks.price.prefect_tasks import (
    calibrate_task,
    evaluate_task,
    gbm_baseline_task,
    leaderboard_task,
    train_task,
)


@flow(name="compare-configurations",
      flow_run_name=lambda: f"compare-configurations-{datetime.now():%Y%m%d-%H%M%S}")
def configurations_flow(config: CompareConfig, dataset: Dataset, info: dict) -> list[dict]:
    """Train + evaluate each strategy x trainer on this flow's task runner. Every training is submitted
    before any evaluation: an evaluation waits for its training inside a worker thread, so submitted in
    between they would hold the threads and the trainings would run one after another."""
    configurations = [(strategy, trainer, config.training_options(strategy, trainer))
                      for strategy, trainer in itertools.product(config.strategies, config.trainers)]
    # Worker threads: Prefect cannot enforce a task timeout there (it would only warn); --time-limit is
    # enforced inside training instead.
    train = with_results_in(train_task, config.cache, config.refresh_cache).with_options(timeout_seconds=None)
    calibrate = with_results_in(calibrate_task, config.cache, config.refresh_cache).with_options(timeout_seconds=None)
    trained = [train.submit(config.cache, dataset, options, None) for *_, options in configurations]
    calibrated = [calibrate.submit(config.cache, dataset, options, config.interval_folds)
                  for *_, options in configurations]
    runs = [(f"{strategy}/{trainer}", evaluate_task.submit(future, dataset, options,
                                                           config.out / f"{strategy}-{trainer}", info, None,
                                                           interval, config.interval_level))
            for (strategy, trainer, options), future, interval in zip(configurations, trained, calibrated)]
    for future in trained + calibrated:  # a training that failed (or hit --time-limit) is the run's error, not
        future.wait()                    # its evaluation left waiting for it
    for future in trained + calibrated:
        future.result()
    return [{"name": name, **future.result(), "history": trained_future.result()[1]["history"]}
            for (name, future), trained_future in zip(runs, trained)]


@flow(name="compare", flow_run_name=lambda: f"compare-{datetime.now():%Y%m%d-%H%M%S}")
def compare_flow(config: CompareConfig) -> list[dict]:
    """Train every strategy x trainer on one split, `max_parallel` at once; rank them."""
    config.check_paths()
    tracker = config.tracker()  # an unreachable store stops the run here, before any work
    with staged(config) as config:
        preprocessed = preprocess_flow(config.preprocess_config())
        info = data_info(config, preprocessed.summary)
        runner = StoppingThreadPoolTaskRunner(max_workers=config.max_parallel)
        rows = configurations_flow.with_options(task_runner=runner)(config, preprocessed.dataset, info)
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
