"""The sweep flow: preprocess (cached) -> AutoML budget points (+ the hand-built models) -> leaderboard.

The points run in a `sweep-points` subflow whose task runner is chosen from the config: one after
another in this process, a local Dask cluster (`workers`), or an existing one (`dask_address`)
through prefect-dask's DaskTaskRunner. Bad parameters are refused before any search starts.
"""

from __future__ import annotations

import os
from datetime import datetime

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.futures import as_completed
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import SweepConfig
from flows.preprocess import preprocess_flow
from flows.train import data_info
from tasks.dataset import Dataset
from tasks.errors import DataError
from tasks.sweep_options import HAND_BUILT, Budget
from tasks.sweep_report import write_sweep_leaderboard
from tasks.sweep_tasks import PointData, automl_point_task
from tasks.train_tasks import evaluate_task, train_task
from tasks.training_options import TrainingOptions


def _run_name() -> str:
    config = flow_run.parameters.get("config")
    get = (lambda k: getattr(config, k)) if hasattr(config, "tasks") else (lambda k: (config or {}).get(k, "?"))
    return f"sweep-{'+'.join(get('tasks'))}-{'+'.join(get('budgets'))}-{datetime.now():%Y%m%d-%H%M%S}"


def check_dask_scheduler(address: str) -> int:
    """The number of workers of the scheduler at `address`; a clear DataError if none answers."""
    from distributed import Client

    try:
        with Client(address, timeout="5s") as client:
            workers = len(client.scheduler_info()["workers"])
    except (OSError, TimeoutError, ValueError) as error:
        raise DataError(f"no Dask scheduler answers at {address!r} ({type(error).__name__}: {error}); start one "
                        f"with `dask scheduler` and workers with `dask worker {address}`") from error
    if workers == 0:
        raise DataError(f"the Dask scheduler at {address!r} has no workers; start some with `dask worker {address}`")
    return workers


def task_runner_for(config: SweepConfig):
    if not (config.dask_address or config.workers):
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner  # imports distributed: only when a cluster is asked for

    if config.dask_address:
        check_dask_scheduler(config.dask_address)
        return DaskTaskRunner(address=config.dask_address)
    if config.workers:
        # Workers report their task runs to this flow's API (also a temporary server's, which they
        # would not find on their own).
        env = {"PREFECT_API_URL": str(get_run_context().client.api_url),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
        return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                              cluster_kwargs={"n_workers": config.workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None, "env": env})


def _check_inputs(config: SweepConfig) -> list[Budget]:
    budgets = config.budget_points()
    if "classify" in config.tasks and config.classify_data is not None:
        from tasks.automl import scan_image_folder

        scan_image_folder(config.classify_data)
    return budgets


@task(name="sweep-leaderboard", cache_policy=NO_CACHE)
def leaderboard_task(rows: list[dict], out) -> dict:
    """Markdown, CSV and plot of every point and hand-built model; the markdown as an artifact."""
    paths = write_sweep_leaderboard(rows, out)
    create_markdown_artifact(paths["markdown"].read_text(), key="sweep-leaderboard",
                             description="AutoML sweep: test score per task and budget, hand-built models beside")
    return {name: str(path) for name, path in paths.items()}


@flow(name="sweep-points", flow_run_name=lambda: f"sweep-points-{datetime.now():%Y%m%d-%H%M%S}")
def sweep_points_flow(config: SweepConfig, dataset: Dataset, budgets: list[Budget]) -> list[dict]:
    """Every task x budget point, and the hand-built models, on this flow's task runner."""
    log = get_run_logger()
    data = PointData(dataset, config.classify_data, config.test_size)
    space = config.search_space()
    threads = config.threads_per_point or (max(1, (os.cpu_count() or 1) // config.workers) if config.workers else None)
    # A point's time limit is honoured inside the search; the task timeout is the backstop.
    points = [automl_point_task.with_options(timeout_seconds=2 * budget.seconds + 1800)
              .submit(config.cache, data, name, budget, space, config.out, threads)
              for name in config.tasks for budget in budgets]
    hand_built = []
    if config.hand_built:
        info = data_info(config)
        for name in (n for n in config.tasks if n in HAND_BUILT):
            options = TrainingOptions(strategy=HAND_BUILT[name])
            trained = train_task.submit(config.cache, dataset, options, None)
            out = config.out / "hand-built" / options.strategy
            hand_built.append((name, options, evaluate_task.submit(trained, dataset, options, out, info, None)))
    total = len(points) + len(hand_built)
    progress = create_progress_artifact(0.0, key="sweep-progress", description="Sweep progress (% of points)")
    done = 0
    for future in as_completed(points + [f for _, _, f in hand_built]):
        future.result()
        done += 1
        update_progress_artifact(progress, progress=100.0 * done / total)
        log.info("Sweep: %d of %d points done", done, total)
    rows = [future.result() for future in points]
    for name, options, future in hand_built:
        metrics = future.result()
        rows.append({"task": name, "kind": "hand-built", "budget": options.strategy, "epochs": options.epochs,
                     "seconds": metrics["seconds"], "reused": "", "metric": "mape_mean",
                     "score": metrics["mape_mean"], "model": str(config.out / "hand-built" / options.strategy)})
    return rows


@flow(name="sweep", flow_run_name=_run_name)
def sweep_flow(config: SweepConfig) -> list[dict]:
    """AutoKeras sweep over budgets; leaderboard under `config.out`."""
    budgets = _check_inputs(config)
    runner = task_runner_for(config)
    dataset = preprocess_flow(config.preprocess_config())
    rows = sweep_points_flow.with_options(task_runner=runner)(config, dataset, budgets)
    leaderboard_task(rows, config.out)
    return rows
