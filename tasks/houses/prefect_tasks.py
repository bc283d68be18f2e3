"""The preprocessing stages as Prefect tasks (a few lines each around tasks.houses' functions).

Each stage keys its outputs on input *content*, parameters and code version in
`tasks.core.cache.Cache`. The two expensive ones (montages, dataset) tell Prefect about it
(`tasks.core.prefect_cache`): a re-run whose entries are complete shows them `Cached` in the UI.
The others are cheap or have side effects and are never cached (NO_CACHE: Prefect's INPUTS policy
would hash a path's string, not the file). Data moves between tasks as file paths.
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
from tasks.core.files import atomic_copy, atomic_write_json, atomic_write_text
from tasks.core.prefect_cache import cached, refreshing
from tasks.houses import duplicates, encoders, ingest, montages
from tasks.houses.dataset import STAGE as DATASET_STAGE
from tasks.houses.dataset import Dataset, build_dataset, dataset_key
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


@task(name="find-duplicates", cache_policy=NO_CACHE)
def duplicates_task(cache_dir: Path, data_dir: Path, houses: pd.DataFrame,
                    policy: ingest.DuplicatePolicy) -> tuple[pd.DataFrame, duplicates.Duplicates]:
    """Photos shared across or within houses (identical or near-identical) and repeated records: the houses
    kept (with their duplicate group) and what was found. Perceptual hashes are cached by photo content."""
    log = get_run_logger()
    kept, found = duplicates.dedupe(Cache(cache_dir, log, refreshing()), data_dir, houses, policy)
    for line in duplicates.warnings(found):
        log.warning("Warning: %s", line)
    counts = found.summary()["counts"]
    log.info("Duplicates: %d group(s) of %d houses (%d shared photo pair(s), %d duplicate record(s), %d left out "
             "by --duplicates %s)", counts["groups"], counts["houses_in_groups"], counts["shared_photos"],
             counts["duplicate_records"], counts["dropped"], policy)
    return kept, found


@task(name="filter-zipcodes", cache_policy=NO_CACHE)
def filter_task(houses: pd.DataFrame, min_houses: int) -> pd.DataFrame:
    """Drop zip codes with fewer than `min_houses` houses."""
    kept = encoders.filter_zipcodes(houses, min_houses)
    get_run_logger().info("Kept %d of %d houses in %d zip codes with >= %d houses",
                          len(kept), len(houses), kept["zipcode"].nunique(), min_houses)
    return kept


def _montages_entry(inputs: dict) -> tuple[str, bool]:
    return montages.montages_entry(Cache(inputs["cache_dir"]), inputs["houses"], inputs["tile_size"],
                                   inputs["on_bad_house"])


def _dataset_entry(inputs: dict) -> tuple[str, bool]:
    key = dataset_key(inputs["kept"], inputs["built"], inputs["test_size"], inputs["seed"])
    return key, Cache(inputs["cache_dir"]).lookup(DATASET_STAGE, key) is not None


@task(**cached("build-montages", _montages_entry), timeout_seconds=6 * 3600)
def montages_task(cache_dir: Path, data_dir: Path, houses: pd.DataFrame, tile_size: int,
                  on_bad_house: ingest.OnBadHouse) -> montages.Montages:
    """Tile each house's four photos; shards keyed by photo content."""
    log = get_run_logger()
    result = montages.build_montages(Cache(cache_dir, log, refreshing()), data_dir, houses, tile_size, on_bad_house,
                                     log=log)
    log.info("Montage shards: %d built, %d reused from the cache", result.computed, result.reused)
    return result


@task(**cached("build-dataset", _dataset_entry))
def dataset_task(cache_dir: Path, kept: pd.DataFrame, built: montages.Montages,
                 test_size: float, seed: int) -> Dataset:
    """Split, fit encoders on train, write train/test Parquet."""
    log = get_run_logger()
    result = build_dataset(Cache(cache_dir, log, refreshing()), kept, built, test_size, seed)
    log.info("Dataset %s: %d train, %d test houses (%s)", result.folder.name[:12],
                          result.n_train, result.n_test, "built" if result.computed else "reused")
    return result


@task(name="write-outputs", cache_policy=NO_CACHE)
def write_outputs_task(out: Path, summary: dict, ingested: ingest.Ingested, dataset: Dataset,
                       built: montages.Montages, export_dir: Path | None, found: duplicates.Duplicates) -> Path:
    """summary.json, manifest.json, encoders.json and duplicates.md into --out; montages as PNG if asked."""
    atomic_write_json(out / "manifest.json", ingested.manifest)
    atomic_write_text(out / "duplicates.md", duplicates.markdown(found))
    atomic_copy(dataset.encoders_path, out / "encoders.json")
    if export_dir is not None:
        count = montages.export_montages(built.shards, built.tile_size, export_dir)
        get_run_logger().info("Wrote %d montages to %s", count, export_dir)
    return atomic_write_json(out / "summary.json", summary)
