"""The preprocessing stages as Prefect tasks (a few lines each around tasks.houses' functions).

Each stage keys its outputs on input *content*, parameters and code version in
`tasks.core.cache.Cache`. The two expensive ones (montages, dataset) tell Prefect about it
(`tasks.core.prefect_cache`): a re-run whose entries are complete shows them `Cached` in the UI.
The others are cheap or have side effects and are never cached (NO_CACHE: Prefect's INPUTS policy
would hash a path's string, not the file). Data moves between tasks as file paths.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.core import storage
from tasks.core.cache import Cache
from tasks.core.download import TransientDownloadError
from tasks.core.errors import DataError
from tasks.core.files import atomic_copy, atomic_write_json, atomic_write_text
from tasks.core.hashing import digest
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


@task(name="list-houses", cache_policy=NO_CACHE)
def list_houses_task(data_dir: Path) -> ingest.Listing:
    """Read the attributes file and pair each house with its photos' names (no photo opened yet)."""
    listing = ingest.list_houses(data_dir)
    get_run_logger().info("Listed %d houses and %d photos in %s", len(listing.houses), len(listing.names), data_dir)
    return listing


@task(name="inspect-photos", cache_policy=NO_CACHE, task_run_name="inspect-photos-{number}")
def inspect_photos_task(data_dir: Path, names: np.ndarray, start: int, hash_photos: bool,
                        number: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """One batch of photos checked and hashed (sha256) on a cluster worker: their digests and problems, at
    positions from `start` (tasks.houses.ingest.inspect_photos)."""
    data_dir = _photos_here(data_dir, [name.decode() for name in names])
    digests, problems = ingest.inspect_photos(data_dir, names, _worker_threads(), hash_photos)
    return digests, [(start + at, reason) for at, reason in problems]


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(listing: ingest.Listing, on_bad_house: ingest.OnBadHouse,
                inspected: tuple[np.ndarray, list[tuple[int, str]]] | None = None) -> ingest.Ingested:
    """Validate the listed houses' photos and hash every input file: `inspected` when a cluster did it, else here
    on two threads."""
    log = get_run_logger()
    if inspected is None:
        inspected = ingest.inspect_photos(listing.data_dir, listing.names, 2,
                                          ingest.hashes_needed(listing, on_bad_house))
    result = ingest.ingested(listing, *inspected, on_bad_house)
    for note in result.notes:
        log.info("Note: %s", note)
    log.info("Read %d houses from %s (%d photos hashed, %d skipped)", result.houses_read, result.attributes_file,
             4 * len(result.houses), len(result.skipped))
    return result


@task(name="find-duplicates", cache_policy=NO_CACHE)
def duplicates_task(cache_dir: Path, data_dir: Path, houses: pd.DataFrame, policy: ingest.DuplicatePolicy,
                    hashes: duplicates.PhotoHashes | None = None) -> tuple[pd.DataFrame, duplicates.Duplicates]:
    """Photos shared across or within houses (identical or near-identical) and repeated records: the houses
    kept (with their duplicate group) and what was found. Perceptual hashes (`hashes` when computed on a
    cluster) are cached by photo content."""
    log = get_run_logger()
    kept, found = duplicates.dedupe(Cache(cache_dir, log, refreshing()), data_dir, houses, policy, hashes)
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


def _shard_batch_entry(inputs: dict) -> tuple[str, bool]:
    cache = Cache(inputs["cache_dir"])
    return (digest(montages.STAGE, inputs["keys"], inputs["on_bad_house"]),
            all(cache.lookup(montages.STAGE, key) is not None for key in inputs["keys"]))


# No Prefect timeout: it runs on Dask workers' threads, where Prefect cannot enforce one (and would warn per task).
@task(**cached("build-montage-shards", _shard_batch_entry), task_run_name="montage-shards-{number}")
def montage_shards_task(cache_dir: Path, data_dir: Path, batch: pd.DataFrame, keys: list[str], tile_size: int,
                        on_bad_house: ingest.OnBadHouse, number: int) -> montages.ShardBatch:
    """One batch of montage shards on a cluster worker, each read from the data and written to the cache as it
    is done; how many it built. The worker's share of the cores decodes the photos."""
    log = get_run_logger()
    cache = Cache(cache_dir, log, refreshing())
    todo = [(group, key) for group, key in montages.batch_shards(batch, keys)
            if cache.lookup(montages.STAGE, key) is None]
    data_dir = _photos_here(data_dir, [name for group, _ in todo for kind in ingest.PHOTO_KINDS
                                       for name in group[f"photo_{kind}"]])
    montages.build_shards(cache, data_dir, todo, tile_size, on_bad_house, _worker_threads(), log)
    return montages.ShardBatch(len(todo))


def _photos_here(data_dir: Path, names: list[str]) -> Path:
    """The data folder as this process sees it; on a worker elsewhere, `names` fetched into its mirror."""
    data_dir = storage.localized(data_dir)
    if remote := storage.remote_of(data_dir):
        storage.fetch_files(remote, names)
    return data_dir


def _worker_threads() -> int:
    """The cores this process may use (a cluster worker's share, set by tasks.core.cluster)."""
    return int(os.environ.get("HOUSE_PIPELINE_THREADS") or os.cpu_count() or 1)


@task(name="photo-hashes", cache_policy=NO_CACHE, task_run_name="photo-hashes-{number}")
def photo_hashes_task(data_dir: Path, names: np.ndarray, number: int) -> np.ndarray:
    """One batch of perceptual hashes on a cluster worker ((N,) uint64, in the order of `names`, (N,) S file
    names), on the worker's share of the cores; the flow caches the whole set (duplicates.cached_hashes)."""
    data_dir = _photos_here(data_dir, [name.decode() for name in names])
    started = time.perf_counter()
    hashes = duplicates.perceptual_hashes(data_dir, names, _worker_threads())
    get_run_logger().info("Perceptual hashes of %d photos (%.0f photos/s)", len(hashes),
                          len(hashes) / max(time.perf_counter() - started, 1e-9))
    return hashes


@task(name="collect-montages", cache_policy=NO_CACHE)
def collect_montages_task(cache_dir: Path, keys: list[str], tile_size: int, on_bad_house: ingest.OnBadHouse,
                          built: list[montages.ShardBatch]) -> montages.Montages:
    """The montage stage's result once every shard batch is done."""
    result = montages.collect_montages(Cache(cache_dir, get_run_logger()), keys, tile_size, on_bad_house,
                                       sum(batch.built for batch in built))
    get_run_logger().info("Montage shards: %d built, %d reused from the cache", result.computed, result.reused)
    return result


@task(name="plan-montage-shards", cache_policy=NO_CACHE)
def plan_shards_task(photo_files: pd.DataFrame, keys: list[str],
                     workers: int) -> list[tuple[pd.DataFrame, list[str]]]:
    """The montage shards in batches, about four per worker."""
    return montages.shard_batches(photo_files, keys, workers)


@task(**cached("build-dataset", _dataset_entry))
def dataset_task(cache_dir: Path, kept: pd.DataFrame, built: montages.Montages,
                 test_size: float, seed: int) -> Dataset:
    """Split, fit encoders on train, write train/test Parquet."""
    log = get_run_logger()
    result = build_dataset(Cache(cache_dir, log, refreshing()), kept, built, test_size, seed)
    log.info("Dataset %s: %d train, %d test houses (%s)", result.folder.name[:12],
                          result.n_train, result.n_test, "built" if result.computed else "reused")
    return result


@task(name="write-manifest", cache_policy=NO_CACHE)
def write_manifest_task(out: Path, ingested: ingest.Ingested) -> Path:
    """manifest.json into --out (a staging folder until the run succeeds): the sha256 of every input kept, written
    as soon as they are known so that the table as read need not stay in memory until the end."""
    return ingested.write_manifest(out / "manifest.json")


@task(name="write-outputs", cache_policy=NO_CACHE)
def write_outputs_task(out: Path, summary: dict, dataset: Dataset, built: montages.Montages, export_dir: Path | None,
                       found: duplicates.Duplicates) -> Path:
    """summary.json, encoders.json and duplicates.md into --out; montages as PNG if asked."""
    atomic_write_text(out / "duplicates.md", duplicates.markdown(found))
    atomic_copy(dataset.encoders_path, out / "encoders.json")
    if export_dir is not None:
        count = montages.export_montages(built.shards, built.tile_size, export_dir)
        get_run_logger().info("Wrote %d montages to %s", count, export_dir)
    return atomic_write_json(out / "summary.json", summary)
