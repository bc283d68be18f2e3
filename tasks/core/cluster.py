"""Where a flow's parallel work runs (montage shards, trainings, CV folds, AutoML points): in the flow's
process, on a local Dask cluster (`--workers N`), or on an existing one (`--dask-address`), through
prefect-dask's DaskTaskRunner (imported only when a cluster is asked for). Each worker process gets its share
of the cores for TensorFlow and OpenCV (`threads_per_worker`), so two trainings never fight over one core."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from tasks.core import worker_cores
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


def threads_per_worker(workers: int | None) -> int | None:
    """The cores each worker process of a local cluster may use: HOUSE_PIPELINE_WORKER_THREADS when set, else
    its share of this machine's cores (None: no cluster, use them all)."""
    if not workers:
        return None
    chosen = os.environ.get("HOUSE_PIPELINE_WORKER_THREADS", "").strip()
    if not chosen:
        return max(1, (os.cpu_count() or 1) // workers)
    if not chosen.isdigit() or int(chosen) < 1:
        raise DataError(f"HOUSE_PIPELINE_WORKER_THREADS={chosen!r}: give a whole number of cores, 1 or more, for "
                        "each worker process (or unset it: each worker then takes its share of the cores)")
    return int(chosen)


def cluster_task_runner(workers: int | None, dask_address: str | None, api_url: str | None, threads: int = 1):
    """A task runner: `threads` worker threads in this process without a cluster, else a Dask cluster's.
    Workers of a local cluster report their task runs to `api_url` (also a temporary server's, which they
    would not find on their own) and limit their native threads to their share of the cores."""
    from tasks.core.runners import StoppingThreadPoolTaskRunner

    if not (dask_address or workers):
        return StoppingThreadPoolTaskRunner(max_workers=threads)
    require_extra("dask", "distributed", "prefect_dask")
    from prefect_dask import DaskTaskRunner

    _quiet_dask()
    if dask_address:
        return DaskTaskRunner(address=dask_address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs=_local_cluster_kwargs(workers, api_url))


@contextmanager
def shared_cluster(workers: int | None, dask_address: str | None, api_url: str | None) -> Iterator[str | None]:
    """The address of one cluster for several subflows of a run (`DaskTaskRunner(address=...)` each): the
    existing scheduler, or a local cluster of `workers` processes started here and stopped on leaving (one
    start instead of one per subflow). None without either."""
    if dask_address or not workers:
        yield dask_address
        return
    require_extra("dask", "distributed", "prefect_dask")
    from distributed import LocalCluster

    _quiet_dask()
    with LocalCluster(**_local_cluster_kwargs(workers, api_url)) as cluster:
        yield cluster.scheduler_address


def _quiet_dask() -> None:
    for name in ("distributed", "distributed.core", "distributed.scheduler", "distributed.nanny"):
        logging.getLogger(name).setLevel(logging.WARNING)  # a cluster's start and stop are not news


def _local_cluster_kwargs(workers: int, api_url: str | None) -> dict:
    """A local cluster of `workers` processes, one task at a time each, on their share of the cores (each kept on
    cores of its own when together they take them all: tasks.core.worker_cores)."""
    cores_each = threads_per_worker(workers)
    share = str(cores_each)
    env = {"PREFECT_API_URL": str(api_url), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
           "OMP_NUM_THREADS": share, "TF_NUM_INTRAOP_THREADS": share, "TF_NUM_INTEROP_THREADS": "1",
           "OPENCV_FOR_THREADS_NUM": share,  # OpenCV's own thread pool (pthreads): else every core per worker
           "HOUSE_PIPELINE_THREADS": share}
    pinned = {}
    if worker_cores.pin_workers(workers, cores_each):
        env[worker_cores.CORES_ENV] = share
        pinned = {"preload": [worker_cores.__name__]}
    return {"n_workers": workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None,
            "env": env, "silence_logs": logging.WARNING, **pinned}
