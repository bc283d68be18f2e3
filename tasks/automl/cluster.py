"""Where the sweep's points run: one after another in the flow's process, on a local Dask cluster,
or on an existing one, through prefect-dask's DaskTaskRunner (imported only when a cluster is asked for)."""

from __future__ import annotations

import os

from tasks.core.errors import DataError
from tasks.core.extras import require_extra


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


def points_task_runner(workers: int | None, dask_address: str | None, api_url: str | None):
    """A task runner for the points. Workers of a local cluster report their task runs to `api_url`
    (also a temporary server's, which they would not find on their own)."""
    from tasks.core.runners import StoppingThreadPoolTaskRunner

    if not (dask_address or workers):
        return StoppingThreadPoolTaskRunner(max_workers=1)
    require_extra("dask", "distributed", "prefect_dask")
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    env = {"PREFECT_API_URL": str(api_url), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None, "env": env})
