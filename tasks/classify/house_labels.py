"""A labelled image set derived from a Houses-format folder: each photo gets its room and its
house's price tier (low, mid, high: terciles of the training houses' prices).

The split is by house, never by photo: a house's four photos are all train or all test. The tier
thresholds come from the train houses only and then apply to every house. The result is a CSV
manifest (path, room, price_tier, group = house, split) that tasks.label_data reads; the photos
are referenced where they are, never copied or written to.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.files import atomic_write_bytes, atomic_write_json
from tasks.core.splits import holdout_rows
from tasks.houses.ingest import PHOTO_KINDS, ingest_houses

TIERS = ("low", "mid", "high")
COLUMNS = ("path", "room", "price_tier", "group", "split")


def price_tiers(prices: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """(tier name per house, [low/mid and mid/high thresholds]) from the train houses' terciles."""
    thresholds = [float(v) for v in np.quantile(prices[train], [1 / 3, 2 / 3])]
    return np.asarray(TIERS)[np.digitize(prices, thresholds, right=True)], thresholds


def house_label_table(data_dir: Path, test_size: float = 0.25, seed: int = 42) -> tuple[pd.DataFrame, dict]:
    """One row per photo: path, room, price_tier, group (house), split; and a summary."""
    data_dir = Path(data_dir)
    ingested = ingest_houses(data_dir, "fail")
    houses = ingested.houses.sort_values("house").reset_index(drop=True)
    train_pos, test_pos = holdout_rows(len(houses), test_size, seed)
    split = np.full(len(houses), "train", dtype=object)
    split[test_pos] = "test"
    tiers, thresholds = price_tiers(houses["price"].to_numpy(np.float64), train_pos)
    rows = [{"path": str(data_dir / house[f"photo_{kind}"]), "room": kind, "price_tier": tier,
             "group": int(house["house"]), "split": side}
            for (_, house), tier, side in zip(houses.iterrows(), tiers, split, strict=True) for kind in PHOTO_KINDS]
    summary = {"source": str(data_dir), "houses": len(houses), "photos": len(rows), "test_size": test_size,
               "seed": seed, "train_houses": len(train_pos), "test_houses": len(test_pos),
               "tier_thresholds": thresholds,
               "tier_counts": {side: {t: int(np.sum((tiers == t) & (split == side))) for t in TIERS}
                               for side in ("train", "test")}}
    return pd.DataFrame(rows, columns=list(COLUMNS)), summary


def write_house_labels(data_dir: Path, manifest: Path, test_size: float = 0.25, seed: int = 42,
                       absolute: bool = False) -> dict:
    """Write the manifest (photo paths relative to its folder, or `absolute`: for a manifest in a run folder
    that moves into place after the run) and `<manifest>.json` with the summary."""
    table, summary = house_label_table(data_dir, test_size, seed)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    base = manifest.parent.resolve()
    table["path"] = [str(Path(p).resolve()) if absolute else os.path.relpath(Path(p).resolve(), base)
                     for p in table["path"]]
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL)
    atomic_write_bytes(manifest, buffer.getvalue().encode())
    atomic_write_json(manifest.with_suffix(".json"), summary)
    return summary
