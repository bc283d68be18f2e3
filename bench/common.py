"""Shared helpers for the benchmarks: run the preprocessing stages as plain calls, measure."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np

from tasks.core.cache import Cache
from tasks.houses.dataset import build_dataset
from tasks.houses.duplicates import dedupe
from tasks.houses.encoders import filter_zipcodes
from tasks.houses.ingest import ingest_houses
from tasks.houses.montage import tile_montage
from tasks.houses.montages import build_montages


def run_stages(data: Path, cache_dir: Path, min_houses: int = 25, tile_size: int = 32) -> dict:
    """The preprocess flow's stages without Prefect; returns seconds per stage and counts."""
    cache = Cache(cache_dir)
    times = {}
    start = time.perf_counter()
    ingested = ingest_houses(data)
    times["ingest"] = time.perf_counter() - start
    start = time.perf_counter()
    houses, found = dedupe(cache, data, ingested.houses)  # duplicate records dropped, groups kept on one side
    times["duplicates"] = time.perf_counter() - start
    kept = filter_zipcodes(houses, min_houses)
    start = time.perf_counter()
    montages = build_montages(cache, data, kept, tile_size)
    times["montages"] = time.perf_counter() - start
    start = time.perf_counter()
    dataset = build_dataset(cache, kept, montages, 0.25, 42)
    times["dataset"] = time.perf_counter() - start
    times["total"] = sum(times.values())
    return {"seconds": times, "houses": len(kept), "montages_built": montages.computed,
            "dataset_built": dataset.computed, "duplicate_groups": len(found.groups()),
            "shards": [str(s) for s in montages.shards]}


def tutorial_montage(photo_paths: list[Path], tile_size: int = 32) -> np.ndarray:
    """The tutorials' plain way (full decode, default cv2.resize), kept as the reference."""
    tiles = [cv2.resize(cv2.imread(str(p)), (tile_size, tile_size)) for p in photo_paths]
    return tile_montage(tiles, tile_size)


def option_setting(item: str) -> tuple[str, object]:
    """`--set OPTION=VALUE` as (option, value): VALUE read as JSON, else kept as text."""
    name, _, value = item.partition("=")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value
