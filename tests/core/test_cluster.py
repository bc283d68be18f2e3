"""How many cores each worker process of a local Dask cluster may use."""

from __future__ import annotations

import os

import pytest

from tasks.core.cluster import threads_per_worker
from tasks.core.errors import DataError


def test_each_worker_takes_its_share_of_the_cores_unless_told(monkeypatch):
    monkeypatch.delenv("HOUSE_PIPELINE_WORKER_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert [threads_per_worker(n) for n in (None, 1, 2, 3, 16)] == [None, 8, 4, 2, 1]
    monkeypatch.setenv("HOUSE_PIPELINE_WORKER_THREADS", "1")  # one core each: a worker is a core, as in the bench
    assert [threads_per_worker(n) for n in (None, 1, 2)] == [None, 1, 1]


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_worker_thread_count_that_is_not_a_whole_number_is_one_line(monkeypatch, value):
    monkeypatch.setenv("HOUSE_PIPELINE_WORKER_THREADS", value)
    with pytest.raises(DataError, match="HOUSE_PIPELINE_WORKER_THREADS"):
        threads_per_worker(2)


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("HOUSE_PIPELINE_WORKER_THREADS", "two", "HOUSE_PIPELINE_WORKER_THREADS='two'"),
    ("HOUSE_PIPELINE_PIN_WORKERS", "yes", "HOUSE_PIPELINE_PIN_WORKERS='yes': give 1 .* 0 to leave them free")])
def test_the_worker_settings_are_checked_with_the_options_before_any_work(monkeypatch, houses, tmp_path, variable,
                                                                          value, message):
    from flows.config import PreprocessConfig

    monkeypatch.setenv(variable, value)
    config = PreprocessConfig(data=str(houses), out=tmp_path / "out", cache=tmp_path / "cache", workers=2)
    with pytest.raises(DataError, match=message):
        config.check_paths()
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def _thread_limits() -> dict:
    import cv2

    return {"opencv": cv2.getNumThreads(), "omp": os.environ.get("OMP_NUM_THREADS"),
            "tensorflow": os.environ.get("TF_NUM_INTRAOP_THREADS"), "ours": os.environ.get("HOUSE_PIPELINE_THREADS")}


def test_each_worker_process_of_a_local_cluster_keeps_to_its_cores_opencv_too(monkeypatch):
    """OpenCV's own thread pool ignores OMP_NUM_THREADS: without its own limit a worker of one core decoded and
    resized photos on every core, and two workers fought over them (the hashes scaled 1.35x on 2 cores)."""
    from distributed import Client

    from tasks.core.cluster import shared_cluster

    monkeypatch.setenv("HOUSE_PIPELINE_WORKER_THREADS", "1")
    monkeypatch.setenv("HOUSE_PIPELINE_PIN_WORKERS", "0")  # pinned, OpenCV would count one core from the affinity:
    with shared_cluster(2, None, None) as address, Client(address) as client:  # the limit must hold without it
        limits = client.run(_thread_limits)
    assert len(limits) == 2
    assert all(found == {"opencv": 1, "omp": "1", "tensorflow": "1", "ours": "1"} for found in limits.values())


def _cores_of_each_thread(*_) -> set[tuple[int, ...]]:
    """The cores each thread of this process may run on (one tuple per distinct set)."""
    return {tuple(sorted(os.sched_getaffinity(int(thread)))) for thread in os.listdir("/proc/self/task")}


def _cluster_thread_cores(workers: int) -> dict[int, set[tuple[int, ...]]]:
    """Each worker's (by its name) distinct core sets over all its threads, the task threads included."""
    from distributed import Client

    from tasks.core.cluster import shared_cluster

    with shared_cluster(workers, None, None) as address, Client(address) as client:
        client.gather(client.map(_cores_of_each_thread, range(2 * workers), pure=False))  # start the task threads
        found = client.run(_cores_of_each_thread)
        names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
    return {names[address]: cores for address, cores in found.items()}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) % 2,
                    reason="needs Linux and an even number of cores")
def test_workers_that_take_every_core_keep_to_cores_of_their_own_and_one_that_does_not_stays_free(monkeypatch):
    """Two workers of half the cores each: every thread of worker k on the k-th half (reading threads included,
    which otherwise ran on the other worker's core); one worker of half the cores: its threads free."""
    allowed = tuple(sorted(os.sched_getaffinity(0)))
    half = len(allowed) // 2
    monkeypatch.setenv("HOUSE_PIPELINE_WORKER_THREADS", str(half))
    assert _cluster_thread_cores(2) == {0: {allowed[:half]}, 1: {allowed[half:]}}
    assert _cluster_thread_cores(1) == {0: {allowed}}
    monkeypatch.setenv("HOUSE_PIPELINE_PIN_WORKERS", "0")  # the user's choice: free
    assert _cluster_thread_cores(2) == {0: {allowed}, 1: {allowed}}
