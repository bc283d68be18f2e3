"""The preprocess flow: resolve data -> list houses -> ingest -> duplicates -> filter -> montages -> dataset ->
outputs. With a Dask cluster (`workers` / `dask_address`) every photo's check and sha256, their perceptual hashes
and the montage shards are computed there, in batches mapped over its workers (the `inspect-photos`,
`photo-hashes` and `montage-shards` subflows, on one cluster); without one, in this process."""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, unmapped
from prefect.context import get_run_context
from prefect.logging import get_run_logger

from flows.config import PreprocessConfig, run_parameter
from flows.run_folder import staged
from tasks.core.cache import Cache
from tasks.core.cluster import cluster_task_runner, shared_cluster
from tasks.core.parquet import release_unused_memory
from tasks.core.prefect_cache import refreshing, with_results_in
from tasks.houses import duplicates, montages
from tasks.houses.dataset import Preprocessed, dataset_columns, summarize
from tasks.houses.ingest import hashes_needed
from tasks.houses.montages import Montages
from tasks.houses.prefect_tasks import (
    collect_montages_task,
    dataset_task,
    duplicates_task,
    filter_task,
    ingest_task,
    inspect_photos_task,
    list_houses_task,
    montage_shards_task,
    montages_task,
    photo_hashes_task,
    plan_shards_task,
    resolve_data_task,
    write_manifest_task,
    write_outputs_task,
)


def _run_name() -> str:
    data = run_parameter("data", "data")
    return f"preprocess-{str(data).rstrip('/').rsplit('/', 1)[-1]}-{datetime.now():%Y%m%d-%H%M%S}"


def _table_file(houses: pd.DataFrame, folder: Path, name: str) -> Path:
    """The houses table as a Parquet file for a subflow. A subflow's parameters travel in the context that
    Prefect sends with each of its tasks to the cluster: the table itself there would be copied once per task
    (16 tasks of 8,000 houses: 73 MB more in this process), a path costs nothing."""
    path = folder / f"{name}.parquet"
    houses.to_parquet(path)
    return path


@flow(name="inspect-photos", flow_run_name=lambda: f"inspect-photos-{datetime.now():%Y%m%d-%H%M%S}")
def inspect_photos_flow(config: PreprocessConfig, data_dir: Path, names_file: Path,
                        hash_photos: bool) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Every listed photo checked and hashed (sha256) in batches on this flow's task runner (a Dask cluster's
    workers): ingest's reading of every byte, off the flow's process. `names_file`: the photos' names (.npy)."""
    names = np.load(names_file, allow_pickle=False)
    batches = duplicates.hash_batches(names, config.workers or 2, most=20000)
    starts = np.cumsum([0] + [len(batch) for batch in batches[:-1]]).tolist()
    done = inspect_photos_task.map(unmapped(data_dir), batches, starts, unmapped(hash_photos),
                                   list(range(1, len(batches) + 1))).result()
    return (np.concatenate([digests for digests, _ in done]) if done else np.zeros(0, "S64"),
            [problem for _, problems in done for problem in problems])


def _array_file(array: np.ndarray, folder: Path, name: str) -> Path:
    """An array (photo names, shard keys) as a .npy file for a subflow (see _table_file)."""
    path = folder / f"{name}.npy"
    np.save(path, array, allow_pickle=False)
    return path


@flow(name="photo-hashes", flow_run_name=lambda: f"photo-hashes-{datetime.now():%Y%m%d-%H%M%S}")
def photo_hashes_flow(config: PreprocessConfig, data_dir: Path, names_file: Path) -> np.ndarray:
    """The perceptual hashes ((N,) uint64) of the photos that `names_file` names (.npy of (N,) S file names: one
    file of each distinct photo whose hashes are not cached) in batches on this flow's task runner (a Dask
    cluster's workers)."""
    batches = duplicates.hash_batches(np.load(names_file, allow_pickle=False), config.workers or 2)
    done = photo_hashes_task.map(unmapped(data_dir), batches, list(range(1, len(batches) + 1)))
    return np.concatenate(done.result()) if batches else np.zeros(0, np.uint64)


@flow(name="montage-shards", flow_run_name=lambda: f"montage-shards-{datetime.now():%Y%m%d-%H%M%S}")
def montage_shards_flow(config: PreprocessConfig, data_dir: Path, photo_files: Path, keys_file: Path) -> Montages:
    """The montage shards in batches on this flow's task runner (a Dask cluster's workers). `photo_files`: the
    houses' numbers and photo names (see _table_file); `keys_file`: the shards' cache keys (.npy)."""
    keys = [key.decode() for key in np.load(keys_file, allow_pickle=False)]
    batches = plan_shards_task(pd.read_parquet(photo_files), keys, config.workers or 2)
    build = with_results_in(montage_shards_task, config.cache, config.refresh_cache)
    built = build.map(unmapped(config.cache), unmapped(data_dir), [batch for batch, _ in batches],
                      [keys for _, keys in batches], unmapped(config.tile_size), unmapped(config.on_bad_house),
                      list(range(1, len(batches) + 1)))
    return collect_montages_task(config.cache, keys, config.tile_size, config.on_bad_house, built.result())


@flow(name="preprocess", flow_run_name=_run_name)
def preprocess_flow(config: PreprocessConfig) -> Preprocessed:
    """Build the training-ready, cached dataset; writes summary.json under `config.out`."""
    config.check_paths()
    started = time.perf_counter()
    with staged(config) as config:
        data_dir = resolve_data_task(config.data, config.cache)
        build_montages, build_dataset = (with_results_in(t, config.cache, config.refresh_cache)
                                         for t in (montages_task, dataset_task))
        with ExitStack() as stack:
            address = stack.enter_context(shared_cluster(config.workers, config.dask_address,
                                                         get_run_context().client.api_url))
            runner = cluster_task_runner(None, address, None) if address else None  # one cluster, three subflows
            tables = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="houses-")))
            listing = list_houses_task(data_dir)
            inspected = inspect_photos_flow.with_options(task_runner=runner)(
                config, data_dir, _array_file(listing.names, tables, "photos"),
                hashes_needed(listing, config.on_bad_house)) if runner else None
            ingested = ingest_task(listing, config.on_bad_house, inspected)
            write_manifest_task(config.out, ingested)
            del listing, inspected
            release_unused_memory()
            hashes = duplicates.cached_hashes(  # computed on the cluster when not in the cache
                Cache(config.cache, get_run_logger(), refreshing()), data_dir, ingested.houses,
                lambda names: photo_hashes_flow.with_options(task_runner=runner)(
                    config, data_dir, _array_file(names, tables, "hash-names"))) if runner else None
            houses, found = duplicates_task(config.cache, data_dir, ingested.houses, config.duplicates, hashes)
            houses_read, skipped = ingested.houses_read, ingested.skipped
            del ingested, hashes  # the table as read: `houses` has its rows from here on (one table in memory)
            kept = filter_task(houses, config.min_houses_per_zip)
            del houses
            release_unused_memory()
            if runner:
                photo_files = _table_file(kept[montages.PHOTO_FILES], tables, "kept")
                keys = _array_file(np.array(montages.shard_plan(kept, config.tile_size)[1], "S64"), tables, "keys")
                kept = dataset_columns(kept)  # the photo names and sha256 digests are in the files now
                release_unused_memory()
                built = montage_shards_flow.with_options(task_runner=runner)(config, data_dir, photo_files, keys)
            else:
                built = build_montages(config.cache, data_dir, kept, config.tile_size, config.on_bad_house)
                kept = dataset_columns(kept)
            release_unused_memory()
        dataset = build_dataset(config.cache, kept, built, config.test_size, config.seed)
        summary = summarize(config.model_dump(mode="json"), houses_read, skipped, built, dataset, found.summary())
        summary["seconds"] = round(time.perf_counter() - started, 3)
        write_outputs_task(config.out, summary, dataset, built, config.export_montages, found)
        return Preprocessed(dataset, summary)
