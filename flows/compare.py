"""The compare flow: one preprocessing, then train + evaluate per strategy x trainer, then a leaderboard."""

from __future__ import annotations

import itertools
from datetime import datetime

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import CompareConfig
from flows.preprocess import preprocess_flow
from flows.train import data_info
from tasks.core.prefect_cache import with_results_in
from tasks.houses.dataset import Dataset
from tasks.price.prefect_tasks import evaluate_task, leaderboard_task, train_task


@flow(name="compare-configurations",
      flow_run_name=lambda: f"compare-configurations-{datetime.now():%Y%m%d-%H%M%S}")
def configurations_flow(config: CompareConfig, dataset: Dataset, info: dict) -> list[dict]:
    """Train + evaluate each strategy x trainer on this flow's task runner. Every training is submitted
    before any evaluation: an evaluation waits for its training inside a worker thread, so submitted in
    between they would hold the threads and the trainings would run one after another."""
    configurations = [(strategy, trainer, config.training_options(strategy, trainer))
                      for strategy, trainer in itertools.product(config.strategies, config.trainers)]
    train = with_results_in(train_task, config.cache, config.refresh_cache)
    trained = [train.submit(config.cache, dataset, options, None) for *_, options in configurations]
    runs = [(f"{strategy}/{trainer}", evaluate_task.submit(future, dataset, options,
                                                           config.out / f"{strategy}-{trainer}", info, None))
            for (strategy, trainer, options), future in zip(configurations, trained)]
    for future in trained:  # a training that failed (or hit --time-limit) is the run's error, not its
        future.wait()       # evaluation left waiting for it
    for future in trained:
        future.result()
    return [{"name": name, **future.result()} for name, future in runs]


@flow(name="compare", flow_run_name=lambda: f"compare-{datetime.now():%Y%m%d-%H%M%S}")
def compare_flow(config: CompareConfig) -> list[dict]:
    """Train every strategy x trainer on one split, `max_parallel` at once; rank them."""
    config.check_paths()
    preprocessed = preprocess_flow(config.preprocess_config())
    info = data_info(config, preprocessed.summary)
    runner = ThreadPoolTaskRunner(max_workers=config.max_parallel)
    rows = configurations_flow.with_options(task_runner=runner)(config, preprocessed.dataset, info)
    leaderboard_task(rows, config.out, f"Compare on {info['houses_kept']} houses")
    return rows
