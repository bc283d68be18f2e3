"""Training inputs from the dataset's Parquet files: in memory (arrays) or streamed (tf.data).

Model inputs are a dict: "attributes" (B, F) float32 and "montage" (B, H, W, 3) float32 in
[0, 1]; a strategy uses one or both. Targets come from `TargetScale`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tasks.training_options import TargetKind

STRATEGY_INPUTS = {"mlp": ("attributes",), "cnn": ("montage",), "mixed": ("attributes", "montage")}


@dataclass(frozen=True)
class TargetScale:
    """price -> training target and back. "scaled": price / train max (the tutorials');
    "log": natural log of the price (relative errors become absolute ones)."""

    kind: TargetKind
    price_max: float

    def to_target(self, prices: np.ndarray) -> np.ndarray:
        prices = np.asarray(prices, dtype=np.float64)
        values = np.log(prices) if self.kind == "log" else prices / self.price_max
        return values.astype(np.float32)

    def to_price(self, targets: np.ndarray) -> np.ndarray:
        targets = np.asarray(targets, dtype=np.float64).reshape(-1)
        return np.exp(targets) if self.kind == "log" else targets * self.price_max

    def to_json(self) -> dict:
        return {"kind": self.kind, "price_max": self.price_max}


def _columns(table: pa.Table, inputs: tuple[str, ...], side: int) -> dict[str, np.ndarray]:
    out = {}
    if "attributes" in inputs:
        features = table["features"].combine_chunks()
        width = features.type.list_size
        out["attributes"] = features.flatten().to_numpy().reshape(-1, width).astype(np.float32)
    if "montage" in inputs:
        raw = np.frombuffer(b"".join(table["montage"].to_pylist()), np.uint8)
        out["montage"] = raw.reshape(-1, side, side, 3).astype(np.float32) / 255.0  # (B, H, W, 3)
    return out


def montage_side(path: Path) -> int:
    first = pq.ParquetFile(path).read_row_group(0, columns=["montage"])["montage"][0].as_py()
    return math.isqrt(len(first) // 3)


def load_arrays(path: Path, strategy: str, scale: TargetScale,
                rows: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(inputs, targets, prices) of a split held in memory; `rows` picks a subset by position."""
    table = pq.read_table(path)
    if rows is not None:
        table = table.take(pa.array(rows))
    inputs = _columns(table, STRATEGY_INPUTS[strategy], montage_side(path))
    prices = table["price"].to_numpy().astype(np.float64)
    return inputs, scale.to_target(prices), prices


def iter_batches(path: Path, strategy: str, scale: TargetScale, chunk_rows: int = 1024,
                 rows: np.ndarray | None = None) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Chunks of the split read from Parquet, one at a time: memory does not grow with the data."""
    side = montage_side(path)
    inputs = STRATEGY_INPUTS[strategy]
    wanted = None if rows is None else set(int(r) for r in rows)
    offset = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        table = pa.Table.from_batches([batch])
        if wanted is not None:
            keep = [i for i in range(table.num_rows) if offset + i in wanted]
            offset += table.num_rows
            if not keep:
                continue
            table = table.take(pa.array(keep))
        yield _columns(table, inputs, side), scale.to_target(table["price"].to_numpy())
