"""A split of the cached dataset (train.parquet or test.parquet) read back as named arrays, whole or
in chunks. Kept apart from tasks.houses.dataset, whose code is part of the dataset's cache key.

Names: "attributes" (N, F) float32 features; "montage" (N, 2t, 2t, 3) float32 BGR in [0, 1];
"price" (N,) float64 dollars; "house" (N,) int64; "group" (N,) int64 (duplicate group, tasks.houses.duplicates).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from tasks.core import parquet

ARRAY_COLUMNS = {"attributes": "features", "montage": "montage", "price": "price", "house": "house", "group": "group"}


def montage_side(path: Path) -> int:
    first = parquet.open_file(path).read_row_group(0, columns=["montage"])["montage"][0].as_py()
    return math.isqrt(len(first) // 3)


def table_arrays(table: pa.Table, names: tuple[str, ...], side: int,
                 raw_montage: bool = False) -> dict[str, np.ndarray]:
    """The named arrays of some rows of a split (see ARRAY_COLUMNS); `raw_montage`: the montage as its uint8 bytes
    (a quarter of the memory; scaled by montage_scale, e.g. in a tf.data stream after batching)."""
    out = {}
    if "attributes" in names:
        features = table["features"].combine_chunks()
        out["attributes"] = features.flatten().to_numpy().reshape(-1, features.type.list_size).astype(np.float32)
    if "montage" in names:
        raw = parquet.fixed_width_rows(table["montage"], side * side * 3)
        if raw is None:
            raise ValueError(f"a montage that is not {side * side * 3} bytes: the split file is not this dataset's")
        raw = raw.reshape(-1, side, side, 3)  # (B, H, W, 3)
        out["montage"] = raw if raw_montage else montage_scale(raw)
    for name in ("price", "house", "group"):
        if name in names:
            out[name] = table[name].to_numpy().astype(np.float64 if name == "price" else np.int64)
    return out


def montage_scale(raw: np.ndarray) -> np.ndarray:
    """uint8 montage bytes -> float32 in [0, 1] (tasks.training.streams does the same division in tf.data)."""
    return raw.astype(np.float32) / np.float32(255.0)


def read_split(path: Path, names: tuple[str, ...], rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Named arrays of a split held in memory; `rows` picks rows by position."""
    table = parquet.read_table(path, columns=[ARRAY_COLUMNS[n] for n in names])
    if rows is not None:
        table = table.take(pa.array(rows, pa.int64()))
    return table_arrays(table, names, montage_side(path) if "montage" in names else 0)


def iter_split(path: Path, names: tuple[str, ...], chunk_rows: int = 1024,
               rows: np.ndarray | None = None, raw_montage: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """Chunks of a split read from Parquet one at a time (memory does not grow with the data)."""
    side = montage_side(path) if "montage" in names else 0
    wanted = None if rows is None else np.isin(np.arange(split_rows(path)), rows)
    offset = 0
    columns = [ARRAY_COLUMNS[n] for n in names]
    for batch in parquet.open_file(path).iter_batches(batch_size=chunk_rows, columns=columns):
        table = pa.Table.from_batches([batch])
        if wanted is not None:
            keep = np.flatnonzero(wanted[offset:offset + table.num_rows])
            offset += table.num_rows
            if not len(keep):
                continue
            table = table.take(pa.array(keep, pa.int64()))
        yield table_arrays(table, names, side, raw_montage)


def split_rows(path: Path) -> int:
    return parquet.open_file(path).metadata.num_rows
