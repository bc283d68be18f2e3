"""The sweep flow: preprocess (cached) -> AutoML budget points (+ the hand-built models) -> leaderboard.

The points run in a `sweep-points` subflow whose task runner is chosen from the config: one after
another in this process, a local Dask cluster (`workers`), or an existing one (`dask_address`)
through prefect-dask's DaskTaskRunner. Bad parameters are refused before any search starts.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import get_run_context
from prefect.futures import as_completed
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from flows.config import SweepConfig
from flows.preprocess import preprocess_flow
from flows.run_folder import staged
from flows.train import data_info
from tasks.automl.options import HAND_BUILT, Budget
from tasks.automl.point import PointData, hand_built_row
from tasks.automl.prefect_tasks import automl_point_task, automl_search_task, sweep_leaderboard_task
from tasks.core.cluster import cluster_task_runner
from tasks.core.prefect_cache import with_results_in
from tasks.houses.dataset import Preprocessed
from tasks.lifecycle.prefect_tasks import record_run_task
from tasks.price.options import PriceOptions
from tasks.price.prefect_tasks import evaluate_task, train_task


def _run_name() -> str:
    config = flow_run.parameters.get("config")
    get = (lambda k: getattr(config, k)) if hasattr(config, "tasks") else (lambda k: (config or {}).get(k, "?"))
    return f"sweep-{'+'.join(get('tasks'))}-{'+'.join(get('budgets'))}-{datetime.now():%Y%m%d-%H%M%S}"


@flow(name="sweep-points", flow_run_name=lambda: f"sweep-points-{datetime.now():%Y%m%d-%H%M%S}")
def sweep_points_flow(config: SweepConfig, preprocessed: Preprocessed, budgets: list[Budget]) -> list[dict]:
    """Every task x budget point, and the hand-built models, on this flow's task runner."""
    log = get_run_logger()
    dataset = preprocessed.dataset
    data = PointData(dataset, config.classify_data, config.test_size)
    space = config.search_space()
    threads = config.threads_per_point or (max(1, (os.cpu_count() or 1) // config.workers) if config.workers else None)
    # A point's time limit is honoured inside the search (a Prefect task timeout cannot stop work in a worker).
    # Every search is submitted before any point's copy-and-report, which waits for its search in a worker.
    search = with_results_in(automl_search_task, config.cache, config.refresh_cache)
    searches = [(name, budget, search.submit(config.cache, data, name, budget, space, threads))
                for name in config.tasks for budget in budgets]
    points = [automl_point_task.submit(searched, name, budget, config.out) for name, budget, searched in searches]
    hand_built = []
    if config.hand_built:
        info = data_info(config, preprocessed.summary)
        train = with_results_in(train_task, config.cache, config.refresh_cache).with_options(timeout_seconds=None)
        for name in (n for n in config.tasks if n in HAND_BUILT):
            options = PriceOptions(strategy=HAND_BUILT[name])
            trained = train.submit(config.cache, dataset, options, None)
            out = config.out / "hand-built" / options.strategy
            hand_built.append((name, options, out, evaluate_task.submit(trained, dataset, options, out, info, None)))
    total = len(points) + len(hand_built)
    progress = create_progress_artifact(0.0, key="sweep-progress", description="Sweep progress (% of points)")
    for done, future in enumerate(as_completed(points + [f for *_, f in hand_built]), start=1):
        future.result()
        update_progress_artifact(progress, progress=100.0 * done / total)
        log.info("Sweep: %d of %d points done", done, total)
    return [future.result() for future in points] + [
        hand_built_row(name, options.strategy, options.epochs, future.result(), out)
        for name, options, out, future in hand_built]


@flow(name="sweep", flow_run_name=_run_name)
def sweep_flow(config: SweepConfig) -> list[dict]:
    """AutoKeras sweep over budgets; leaderboard under `config.out`."""
    config.check_paths()  # the command line checked before the flow started; deployments are checked here
    budgets = config.budget_points()
    runner = cluster_task_runner(config.workers, config.dask_address, get_run_context().client.api_url)
    tracker = config.tracker()  # an unreachable store stops the run here, before any search
    with staged(config) as config:
        preprocessed = preprocess_flow(config.preprocess_config())
        rows = sweep_points_flow.with_options(task_runner=runner)(config, preprocessed, budgets)
        sweep_leaderboard_task(rows, config.out)
        for row in rows:  # one MLflow run per point (and hand-built model), tagged with the sweep
            folder = Path(row["model"]).parent if row["kind"] == "automl" else None
            record_run_task(tracker, "house-prices-sweep", f"{config.out.name}-{row['task']}-{row['budget']}",
                            {**config.model_dump(mode="json"), **{k: row[k] for k in ("task", "kind", "budget")}},
                            {"score": row["score"], "seconds": row["seconds"]}, {},
                            {"dataset.cache_key": preprocessed.dataset.folder.name, "metric": row["metric"],
                             "sweep": config.out.name}, {"point": folder} if folder else {})
        return rows
