"""The preprocessing stages as Prefect tasks (a few lines each around tasks.houses' functions).

Cache policy: NO_CACHE on purpose. Prefect's INPUTS policy hashes a path's string, not the
file, and its results are pickled; instead each stage keys its outputs on input *content*,
parameters and code version in `tasks.core.cache.Cache`, checks that the outputs are still on
disk, and returns at once on a hit (logging "reused"). Data moves between tasks as file paths.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.core.cache import Cache
from tasks.core.download import TransientDownloadError
from tasks.core.errors import DataError
from tasks.core.files import atomic_copy, atomic_write_json
from tasks.houses import encoders, ingest, montages
from tasks.houses.dataset import Dataset, build_dataset
from tasks.houses.source import resolve_data_source


def _retry_only_transient(task, task_run, state) -> bool:
    """Retry network trouble, not a bad URL or a bad zip."""
    error = state.data
    return not isinstance(error, DataError) or isinstance(error, TransientDownloadError)


@task(name="resolve-data", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5, tags=["io"],
      retry_condition_fn=_retry_only_transient)
def resolve_data_task(source: str, cache_dir: Path) -> Path:
    """Local folder as is; a URL is downloaded once (retried: network I/O)."""
    return resolve_data_source(source, Cache(cache_dir, get_run_logger()))


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(data_dir: Path, on_bad_house: ingest.OnBadHouse) -> ingest.Ingested:
    """Read and validate attributes and photos; hash every input file."""
    log = get_run_logger()
    result = ingest.ingest_houses(data_dir, on_bad_house)
    for note in result.notes:
        log.info("Note: %s", note)
    log.info("Read %d houses from %s (%d photos hashed, %d skipped)", result.houses_read, result.attributes_file,
             4 * len(result.houses), len(result.skipped))
    return result


@task(name="filter-zipcodes", cache_policy=NO_CACHE)
def filter_task(houses: pd.DataFrame, min_houses: int) -> pd.DataFrame:
    """Drop zip codes with fewer than `min_houses` houses."""
    kept = encoders.filter_zipcodes(houses, min_houses)
    get_run_logger().info("Kept %d of %d houses in %d zip codes with >= %d houses",
                          len(kept), len(houses), kept["zipcode"].nunique(), min_houses)
    return kept


@task(name="build-montages", cache_policy=NO_CACHE, timeout_seconds=6 * 3600)
def montages_task(cache_dir: Path, data_dir: Path, houses: pd.DataFrame, tile_size: int,
                  on_bad_house: ingest.OnBadHouse) -> montages.Montages:
    """Tile each house's four photos; shards keyed by photo content."""
    log = get_run_logger()
    result = montages.build_montages(Cache(cache_dir, log), data_dir, houses, tile_size, on_bad_house, log=log)
    log.info("Montage shards: %d built, %d reused from the cache", result.computed, result.reused)
    return result


@task(name="build-dataset", cache_policy=NO_CACHE)
def dataset_task(cache_dir: Path, kept: pd.DataFrame, built: montages.Montages,
                 test_size: float, seed: int) -> Dataset:
    """Split, fit encoders on train, write train/test Parquet."""
    log = get_run_logger()
    result = build_dataset(Cache(cache_dir, log), kept, built, test_size, seed)
    log.info("Dataset %s: %d train, %d test houses (%s)", result.folder.name[:12],
                          result.n_train, result.n_test, "built" if result.computed else "reused")
    return result


@task(name="write-outputs", cache_policy=NO_CACHE)
def write_outputs_task(out: Path, summary: dict, ingested: ingest.Ingested, dataset: Dataset,
                       built: montages.Montages, export_dir: Path | None) -> Path:
    """summary.json, manifest.json and encoders.json into --out; montages as PNG if asked."""
    atomic_write_json(out / "manifest.json", ingested.manifest)
    atomic_copy(dataset.encoders_path, out / "encoders.json")
    if export_dir is not None:
        count = montages.export_montages(built.shards, built.tile_size, export_dir)
        get_run_logger().info("Wrote %d montages to %s", count, export_dir)
    return atomic_write_json(out / "summary.json", summary)
