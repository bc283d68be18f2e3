"""Training inputs and targets of the price models, from the dataset's Parquet splits.

Model inputs are a dict: "attributes" (B, F) float32 and "montage" (B, H, W, 3) float32 in
[0, 1]; a strategy uses one or both. Targets come from `TargetScale`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.houses.arrays import iter_split, read_split
from tasks.price.options import TargetKind

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


def load_arrays(path: Path, strategy: str, scale: TargetScale,
                rows: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(inputs, targets, prices) of a split held in memory; `rows` picks a subset by position."""
    arrays = read_split(path, (*STRATEGY_INPUTS[strategy], "price"), rows)
    prices = arrays.pop("price")
    return arrays, scale.to_target(prices), prices


def iter_batches(path: Path, strategy: str, scale: TargetScale, chunk_rows: int = 1024,
                 rows: np.ndarray | None = None) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """(inputs, targets) chunk by chunk from Parquet: memory does not grow with the data. The montage comes as
    its uint8 bytes, for tasks.training.streams to scale once batched."""
    for arrays in iter_split(path, (*STRATEGY_INPUTS[strategy], "price"), chunk_rows, rows, raw_montage=True):
        prices = arrays.pop("price")
        yield arrays, scale.to_target(prices)


def train_prices(path: Path) -> np.ndarray:
    return read_split(path, ("price",))["price"]
