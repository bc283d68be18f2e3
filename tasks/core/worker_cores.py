"""Each worker process of a local cluster that takes the whole machine kept on cores of its own.

Left to the operating system, two workers of one core each on a 2-core machine do not stay one per core: each
has reading threads (tasks.core.read_ahead) and Dask's and Prefect's own threads besides its decoding thread,
and the scheduler moves them all between the cores, so the workers' threads land on each other's core and
their caches go cold. Kept on its own cores, each worker ran the 50,000-house preprocessing's shards about a
tenth faster (bench/bench_scale.py, issue 26). A cluster that leaves cores free is not pinned: there a single
worker's reading threads use a core it would leave idle.

The flow's process sets HOUSE_PIPELINE_WORKER_CORES (cores per worker) and makes this module a Dask preload of
each worker process, whose `dask_setup` pins every thread of the process to its share: worker k (Dask names a
local cluster's workers 0, 1, ...) takes the k-th share of the cores this process may use. Linux only;
elsewhere the workers stay free. HOUSE_PIPELINE_PIN_WORKERS=0 leaves them free everywhere (for a machine whose
cores other work needs too).
"""

from __future__ import annotations

import os

from tasks.core.errors import DataError

CORES_ENV = "HOUSE_PIPELINE_WORKER_CORES"


def pinning_allowed() -> bool:
    """HOUSE_PIPELINE_PIN_WORKERS: 1 (or unset) to pin the workers of a cluster that takes every core, 0 not to."""
    chosen = os.environ.get("HOUSE_PIPELINE_PIN_WORKERS", "").strip()
    if chosen not in ("", "0", "1"):
        raise DataError(f"HOUSE_PIPELINE_PIN_WORKERS={chosen!r}: give 1 to keep each worker of a local cluster "
                        "that takes every core on cores of its own, 0 to leave them free (or unset it: 1)")
    return chosen != "0"


def pin_workers(workers: int, cores_each: int) -> bool:
    """Whether to pin: `workers` processes of `cores_each` cores take every core this process may use, on a
    system that can pin, and HOUSE_PIPELINE_PIN_WORKERS allows it."""
    return (pinning_allowed() and hasattr(os, "sched_setaffinity")
            and workers * cores_each >= len(os.sched_getaffinity(0)))


def cores_of(worker: int, cores_each: int, allowed: list[int]) -> set[int]:
    """The cores of the `worker`-th worker: its share of `allowed`, in order (wrapping round if there are more
    workers than shares)."""
    start = worker * cores_each
    return {allowed[(start + i) % len(allowed)] for i in range(cores_each)}


def pin_every_thread(cores: set[int], process: int | str = "self") -> None:
    """Every thread of a process (this one by default), each on `cores`; threads started later inherit it from the
    thread starting them."""
    try:
        threads = os.listdir(f"/proc/{process}/task")
    except OSError:  # the process ended
        return
    for thread in threads:
        try:
            os.sched_setaffinity(int(thread), cores)
        except OSError:  # the thread ended meanwhile
            continue


def dask_setup(worker) -> None:
    """Dask's preload hook, run in each worker process as it starts."""
    cores_each = os.environ.get(CORES_ENV, "")
    if not cores_each.isdigit() or not isinstance(worker.name, int):  # set only where pin_workers() said so
        return
    pin_every_thread(cores_of(worker.name, int(cores_each), sorted(os.sched_getaffinity(0))))
