"""The compare flow: one preprocessing, then train + evaluate per strategy x trainer, then a leaderboard."""

from __future__ import annotations

import itertools
from datetime import datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import CompareConfig
from flows.preprocess import preprocess_flow
from flows.train import data_info
from tasks.dataset import Dataset
from tasks.leaderboard import write_leaderboard
from tasks.train_tasks import evaluate_task, train_task


@task(name="leaderboard", cache_policy=NO_CACHE)
def leaderboard_task(rows: list[dict], out, title: str) -> dict:
    """Rank the configurations by test MAPE; write markdown, CSV and plot."""
    paths = write_leaderboard(rows, out, title)
    create_markdown_artifact(paths["markdown"].read_text(), key="leaderboard", description=title)
    return {name: str(path) for name, path in paths.items()}


@flow(name="compare-configurations",
      flow_run_name=lambda: f"compare-configurations-{datetime.now():%Y%m%d-%H%M%S}")
def configurations_flow(config: CompareConfig, dataset: Dataset, info: dict) -> list[dict]:
    """Train + evaluate each strategy x trainer on this flow's task runner."""
    runs = []
    for strategy, trainer in itertools.product(config.strategies, config.trainers):
        options = config.training_options(strategy=strategy, trainer=trainer)
        trained = train_task.submit(config.cache, dataset, options, None)
        out = config.out / f"{strategy}-{trainer}"
        runs.append((f"{strategy}/{trainer}", evaluate_task.submit(trained, dataset, options, out, info, None)))
    return [{"name": name, **future.result()} for name, future in runs]


@flow(name="compare", flow_run_name=lambda: f"compare-{datetime.now():%Y%m%d-%H%M%S}")
def compare_flow(config: CompareConfig) -> list[dict]:
    """Train every strategy x trainer on one split, `max_parallel` at once; rank them."""
    dataset = preprocess_flow(config.preprocess_config())
    info = data_info(config)
    runner = ThreadPoolTaskRunner(max_workers=config.max_parallel)
    rows = configurations_flow.with_options(task_runner=runner)(config, dataset, info)
    leaderboard_task(rows, config.out, f"Compare on {info['houses_kept']} houses")
    return rows
