"""AutoML sweep points and the sweep's leaderboard as Prefect tasks."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.automl import point
from tasks.automl.options import Budget, SearchSpace
from tasks.automl.report import point_markdown, write_sweep_leaderboard
from tasks.core.artifacts import artifact_key, publish_markdown
from tasks.core.prefect_cache import cached, refreshing


def _point_entry(inputs: dict) -> tuple[str, bool]:
    return point.point_entry(inputs["cache_dir"], inputs["data"], inputs["sweep_task"], inputs["budget"],
                             inputs["space"])


@task(**cached("automl-search", _point_entry), task_run_name="search-{sweep_task}-{budget.name}",
      tags=["automl", "training"])
def automl_search_task(cache_dir: Path, data: point.PointData, sweep_task: str, budget: Budget, space: SearchSpace,
                       threads: int | None) -> point.SearchedPoint:
    """One budget point's search (or its resume, or its reuse): the cache entry with model and result."""
    log = get_run_logger()
    point.limit_threads(threads, log)
    return point.SearchedPoint(*point.search_point(cache_dir, data, sweep_task, budget, space, log, refreshing()))


@task(name="automl-point", cache_policy=NO_CACHE, task_run_name="automl-{sweep_task}-{budget.name}")
def automl_point_task(searched: point.SearchedPoint, sweep_task: str, budget: Budget, out: Path) -> dict:
    """A searched point's files copied to OUT/points/TASK-BUDGET, its artifact and leaderboard row."""
    log = get_run_logger()
    result = searched.result
    target = point.copy_point(searched.entry, out / "points" / f"{sweep_task}-{budget.name}")
    plot = "confusion.png" if sweep_task == "classify" else "predicted_vs_actual.png"
    publish_markdown(point_markdown(result, (target / "trials.csv").read_text()) + f"\n![{plot[:-4]}]({plot})\n",
                     artifact_key("automl", sweep_task, budget.name), f"AutoML {sweep_task} at budget {budget.name}",
                     target)
    metric, score = point.score_of(result)
    log.info("AutoML %s %s: test %s %.4g after %.0f s, %d trial(s)%s", sweep_task, budget.name, metric, score,
             result["seconds"], result["trials_run"], " (reused)" if searched.reused else "")
    return point.point_row(sweep_task, budget, result, searched.reused, target / "best.keras")


@task(name="sweep-leaderboard", cache_policy=NO_CACHE)
def sweep_leaderboard_task(rows: list[dict], out: Path) -> dict:
    """Markdown, CSV and plot of every point and hand-built model; the markdown as an artifact."""
    paths = write_sweep_leaderboard(rows, out)
    publish_markdown(paths["markdown"].read_text(), "sweep-leaderboard",
                     "AutoML sweep: test score per task and budget, hand-built models beside", out)
    return {name: str(path) for name, path in paths.items()}
