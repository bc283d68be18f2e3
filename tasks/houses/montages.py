"""Montage stage: every kept house's four photos tiled into one image, cached in shards.

Houses are grouped into shards by house number (1-64, 65-128, ...). A shard's cache key is
its houses' photo hashes, the tile size and this code's version, so changing one photo
rebuilds only the shard of that house. Each shard is a Parquet file: house (int64) and
montage (binary, 2*tile x 2*tile x 3 BGR uint8 bytes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tasks.core import images, interrupt, parquet
from tasks.core.cache import Cache
from tasks.core.errors import DataError, DataErrors
from tasks.core.files import atomic_write_bytes
from tasks.core.hashing import code_version, digest
from tasks.core.prefect_cache import cacheable
from tasks.core.read_ahead import Content, map_read_ahead
from tasks.houses import montage
from tasks.houses.ingest import PHOTO_KINDS, SKIP_HINT, OnBadHouse

SHARD_HOUSES = 64
PROGRESS_SECONDS = 5.0
STAGE = "montages"
MONTAGE_SCHEMA = pa.schema([("house", pa.int64()), ("montage", pa.binary())])


@cacheable
@dataclass
class Montages:
    tile_size: int
    shards: list[Path]  # Parquet files, in house order
    failed: list[dict]  # houses whose photos could not be decoded (skip mode)
    computed: int  # shards built in this run
    reused: int  # shards found in the cache

    def replayed(self) -> Montages:
        """This result read back from Prefect's cache: every shard was reused."""
        return dataclasses.replace(self, computed=0, reused=self.computed + self.reused)


@cacheable
@dataclass
class ShardBatch:
    """What one batch of shards on a cluster worker did: how many shards it built."""

    built: int

    def replayed(self) -> ShardBatch:
        """Read back from Prefect's cache: nothing was built in this run."""
        return ShardBatch(0)


def _shard_key(shard: pd.DataFrame, tile_size: int, version: str) -> str:
    photos = shard[["house", *(f"sha_{k}" for k in PHOTO_KINDS)]].to_numpy().tolist()
    return digest(STAGE, version, tile_size, photos)


def _photo_paths(data_dir: Path, row: Mapping) -> list[Path]:
    return [data_dir / row[f"photo_{kind}"] for kind in PHOTO_KINDS]


def _build_one(data_dir: Path, row: Mapping, tile_size: int,
               contents: list[Content]) -> tuple[int, bytes | None, str | None]:
    """(house, montage bytes or None, problem or None) from the house's four photos as read."""
    interrupt.check()  # queued photos are dropped at once when the run is stopped
    photos = list(zip(contents, _photo_paths(data_dir, row), strict=True))
    try:
        return row["house"], montage.montage_from_bytes(photos, tile_size).tobytes(), None
    except DataError as error:
        return row["house"], None, str(error)


def _write_shard(folder: Path, results: list[tuple[int, bytes | None, str | None]]) -> None:
    good = [(house, data) for house, data, _ in results if data is not None]
    table = pa.table(
        {"house": [h for h, _ in good], "montage": [d for _, d in good]}, schema=MONTAGE_SCHEMA)
    parquet.write_table(table, folder / "montages.parquet")
    failed = [{"house": int(h), "reason": r} for h, _, r in results if r is not None]
    (folder / "failed.json").write_text(json.dumps(failed))


def shard_plan(houses: pd.DataFrame, tile_size: int | None) -> tuple[list[pd.DataFrame], list[str]]:
    """The houses grouped into shards, and each shard's cache key (none without a `tile_size`)."""
    shard_ids = (houses["house"] - 1) // SHARD_HOUSES
    groups = [group for _, group in houses.groupby(shard_ids, sort=True)]
    if tile_size is None:
        return groups, []
    version = code_version(images, montage)
    return groups, [_shard_key(group, tile_size, version) for group in groups]


def montages_entry(cache: Cache, houses: pd.DataFrame, tile_size: int, on_bad_house: OnBadHouse) -> tuple[str, bool]:
    """(the stage's content key, whether every shard is in the cache and verified)."""
    _, keys = shard_plan(houses, tile_size)
    return digest(STAGE, keys, on_bad_house), all(cache.lookup(STAGE, key) is not None for key in keys)


def build_shards(cache: Cache, data_dir: Path, todo: list[tuple[pd.DataFrame, str]], tile_size: int,
                 on_bad_house: OnBadHouse, workers: int, log: logging.Logger | logging.LoggerAdapter) -> None:
    """Build the shards `todo` ((houses, key) pairs) one after another, `workers` photos at a time, each
    written to the cache as it is done (a bad photo stops the batch unless on_bad_house is skip)."""
    total = sum(len(group) for group, _ in todo)
    done, started, problems = 0, time.perf_counter(), []
    last_report = started
    # Decoded on `workers` threads (OpenCV releases the GIL) while the next photos are read, across shards.
    rows = (row for group, _ in todo for row in group.to_dict("records"))  # a dict a house: far cheaper than a Series
    built = map_read_ahead(lambda row, contents: _build_one(data_dir, row, tile_size, contents), rows,
                           lambda row: _photo_paths(data_dir, row), workers)
    with contextlib.closing(built):  # a failing shard drops the reads and montages queued after it
        for group, key in todo:
            results = list(itertools.islice(built, len(group)))
            problems += [DataError(reason) for _, _, reason in results if reason]
            if problems and on_bad_house == "fail":
                raise DataErrors(problems, SKIP_HINT)
            with cache.write(STAGE, key) as folder:
                _write_shard(folder, results)
            done += len(group)
            now = time.perf_counter()
            if now - last_report >= PROGRESS_SECONDS or done == total:
                last_report = now
                log.info("Montages: %d/%d houses (%.0f houses/s)", done, total, done / (now - started))


def collect_montages(cache: Cache, keys: list[str], tile_size: int, on_bad_house: OnBadHouse,
                     computed: int, known: dict[str, Path] | None = None) -> Montages:
    """The stage's result once every shard (`keys`: shard_plan's) is in the cache (`computed`: how many this run
    built; `known`: entries already looked up)."""
    known = known or {}
    found = {key: known.get(key) or cache.lookup(STAGE, key) for key in keys}
    missing = [key for key, entry in found.items() if entry is None]
    if missing:
        raise RuntimeError(f"{len(missing)} montage shard(s) are not in the cache after they were built")
    failed = [item for key in keys for item in json.loads((found[key] / "failed.json").read_text())]
    if failed and on_bad_house == "fail":  # failures cached by an earlier skip-mode run
        raise DataErrors([DataError(item["reason"]) for item in failed], SKIP_HINT)
    return Montages(tile_size=tile_size, shards=[found[key] / "montages.parquet" for key in keys], failed=failed,
                    computed=computed, reused=len(keys) - computed)


PHOTO_FILES = ["house", *(f"photo_{kind}" for kind in PHOTO_KINDS)]  # what a shard's worker reads of its houses


def shard_batches(photo_files: pd.DataFrame, keys: list[str], workers: int) -> list[tuple[pd.DataFrame, list[str]]]:
    """The shards in batches for a cluster: at least four batches per worker (a task's bookkeeping costs about
    what a shard does), at most 32 shards each, as many batches as a whole number of rounds of the workers needs
    and the shards spread evenly over them (no batch left to run alone at the end while the other workers wait).
    A batch is one table of its shards' houses (batch_shards splits it again on the worker: one small table per
    shard would cost the flow's process about 100 Python objects a shard, kept with the tasks' parameters until
    the run ends). `photo_files`: the houses' PHOTO_FILES columns, all that a worker reads; `keys`: the shards'
    cache keys (shard_plan)."""
    groups, _ = shard_plan(photo_files[PHOTO_FILES], None)
    rounds = max(4, -(-len(groups) // (32 * workers)))
    count = min(len(groups), rounds * workers)
    if count == 0:
        return []
    bounds = [len(groups) * i // count for i in range(count + 1)]
    return [(pd.concat(groups[start:end], ignore_index=True), keys[start:end])
            for start, end in itertools.pairwise(bounds)]


def batch_shards(batch: pd.DataFrame, keys: list[str]) -> list[tuple[pd.DataFrame, str]]:
    """A batch of shard_batches back as (houses, key) per shard, the houses in their order in the plan."""
    return list(zip(shard_plan(batch, None)[0], keys, strict=True))


def build_montages(
    cache: Cache,
    data_dir: Path,
    houses: pd.DataFrame,
    tile_size: int,
    on_bad_house: OnBadHouse = "fail",
    workers: int | None = None,
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> Montages:
    """Build (or reuse) the montage shards of `houses` (an Ingested.houses frame) in this process."""
    log = log or logging.getLogger(__name__)
    workers = workers or os.cpu_count() or 1
    groups, keys = shard_plan(houses, tile_size)
    found = {key: cache.lookup(STAGE, key) for key in keys}
    todo = [(group, key) for group, key in zip(groups, keys) if found[key] is None]
    if todo:
        log.info("Building montages of %d houses in %d shard(s), %d reused, %d threads",
                 sum(len(group) for group, _ in todo), len(todo), len(keys) - len(todo), workers)
    build_shards(cache, data_dir, todo, tile_size, on_bad_house, workers, log)
    built = {key: cache.entry_path(STAGE, key) for _, key in todo}
    return collect_montages(cache, keys, tile_size, on_bad_house, len(todo),
                            {key: entry for key, entry in found.items() if entry is not None} | built)


def iter_montages(shards: list[Path], tile_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(house, (2*tile, 2*tile, 3) uint8 montage) for every house, one shard in memory at a time."""
    side = 2 * tile_size
    for shard in shards:
        table = parquet.read_table(shard)
        for house, data in zip(table["house"].to_pylist(), table["montage"].to_pylist()):
            yield house, np.frombuffer(data, np.uint8).reshape(side, side, 3)


def export_montages(shards: list[Path], tile_size: int, out_dir: Path) -> int:
    """Write each montage as out_dir/{house}.png; returns how many were written."""
    count = 0
    for house, image in iter_montages(shards, tile_size):
        atomic_write_bytes(out_dir / f"{house}.png", images.encode_image(image, ".png"))
        count += 1
    return count
