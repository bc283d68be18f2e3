"""Dataset stage: split, encode and write the training-ready Parquet files.

Entry files: `train.parquet`, `test.parquet` (one row per house: house, the raw attributes,
`features` (list<float32>, see tasks.houses.encoders), `target` (price / train maximum, float32) and
`montage` (binary, BGR uint8 of shape (2*tile, 2*tile, 3)), `group` (int64: the house's duplicate group, its
lowest house number, tasks.houses.duplicates; every split of the train houses keeps a group on one side)),
`encoders.json` and `split.json`.
Rows are in house order and written in row groups of ROW_GROUP rows, so a reader can stream them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tasks.core import parquet
from tasks.core.cache import Cache
from tasks.core.hashing import code_version, digest
from tasks.core.prefect_cache import cacheable
from tasks.houses import encoders as encoding
from tasks.houses.ingest import ATTRIBUTE_COLUMNS
from tasks.houses.montages import Montages

STAGE = "dataset"
ROW_GROUP = 1024
SPLITS = ("train", "test")


@cacheable
@dataclass
class Dataset:
    folder: Path
    tile_size: int
    n_train: int
    n_test: int
    zipcodes: list[int]
    computed: bool

    def replayed(self) -> Dataset:
        """This result read back from Prefect's cache: the dataset was reused."""
        return dataclasses.replace(self, computed=False)

    @property
    def train_path(self) -> Path:
        return self.folder / "train.parquet"

    @property
    def test_path(self) -> Path:
        return self.folder / "test.parquet"

    @property
    def encoders_path(self) -> Path:
        return self.folder / "encoders.json"

    def encoders(self) -> dict:
        return json.loads(self.encoders_path.read_text())


def dataset_schema(n_features: int) -> pa.Schema:
    return pa.schema(
        [("house", pa.int64())]
        + [(c, pa.int64() if c == "zipcode" else pa.float64()) for c in ATTRIBUTE_COLUMNS]
        + [("features", pa.list_(pa.float32(), n_features)), ("target", pa.float32()),
           ("montage", pa.binary()), ("group", pa.int64())])


def _split_columns(frame: pd.DataFrame, encoders: dict) -> dict[str, np.ndarray]:
    """A split's houses as arrays in house order, one per column of the file but the montage."""
    frame = frame.sort_values("house")
    houses = frame["house"].to_numpy(np.int64)
    return {"house": houses,
            **{c: frame[c].to_numpy(np.int64 if c == "zipcode" else np.float64) for c in ATTRIBUTE_COLUMNS},
            "features": encoding.encode_attributes(frame, encoders),
            "target": encoding.scale_prices(frame["price"], encoders),
            "group": frame["group"].to_numpy(np.int64) if "group" in frame.columns else houses}


def _write_splits(folder: Path, frames: dict[str, pd.DataFrame], montages: Montages, encoders: dict) -> None:
    """Stream montages shard by shard into the two split files, in row groups of ROW_GROUP rows: memory holds
    one shard, one row group per split and the houses' columns as arrays (no Python object per house)."""
    schema = dataset_schema(len(encoders["feature_names"]))
    splits = {name: _split_columns(frame, encoders) for name, frame in frames.items()}
    writers = {name: parquet.writer(folder / f"{name}.parquet", schema) for name in SPLITS}
    pending: dict[str, pa.Table] = {name: schema.empty_table() for name in SPLITS}

    def write(name: str, at_least: int) -> None:
        while pending[name].num_rows >= at_least:
            writers[name].write_table(pending[name].slice(0, ROW_GROUP).combine_chunks())
            pending[name] = pending[name].slice(ROW_GROUP)
            parquet.release_unused_memory()  # else the allocator keeps each row group's pages

    try:
        for shard in montages.shards:
            table = parquet.read_table(shard, columns=["house", "montage"])
            in_shard = table["house"].to_numpy()
            for name, columns in splits.items():
                found = np.isin(in_shard, columns["house"])  # this split's houses in the shard, in its order
                rows = np.searchsorted(columns["house"], in_shard[found])
                features = columns["features"][rows]
                part = pa.table({**{field.name: pa.array(columns[field.name][rows], type=field.type)
                                    for field in schema if field.name not in ("features", "montage")},
                                 "features": pa.FixedSizeListArray.from_arrays(features.ravel(), features.shape[1]),
                                 "montage": table["montage"].filter(pa.array(found))}).select(schema.names)
                pending[name] = pa.concat_tables([pending[name], part.cast(schema)])
                write(name, ROW_GROUP)
        for name in SPLITS:
            write(name, 1)
    finally:
        for writer in writers.values():
            writer.close()


def dataset_columns(kept: pd.DataFrame) -> pd.DataFrame:
    """What build_dataset reads of the kept houses (house, attributes, duplicate group): without their photo
    names and sha256 digests, which take most of the table's memory (about 0.4 KB a house)."""
    return kept[["house", *ATTRIBUTE_COLUMNS, *(["group"] if "group" in kept.columns else [])]]


def _usable(kept: pd.DataFrame, montages: Montages) -> pd.DataFrame:
    """The kept houses less those whose photos failed."""
    failed = {item["house"] for item in montages.failed}
    return kept[~kept["house"].isin(failed)].reset_index(drop=True)


def dataset_key(kept: pd.DataFrame, montages: Montages, test_size: float, seed: int) -> str:
    attributes = dataset_columns(_usable(kept, montages))
    values = hashlib.sha256(np.ascontiguousarray(attributes.to_numpy(np.float64)).tobytes()).hexdigest()
    return digest(STAGE, code_version(encoding, sys.modules[__name__]), test_size, seed,
                  montages.tile_size, list(attributes.columns), values,
                  [shard.parent.name for shard in montages.shards])


def build_dataset(cache: Cache, kept: pd.DataFrame, montages: Montages, test_size: float, seed: int) -> Dataset:
    """Split the kept houses (less those whose photos failed), fit encoders, write the files."""
    usable = _usable(kept, montages)
    key = dataset_key(kept, montages, test_size, seed)
    folder = cache.lookup(STAGE, key)
    computed = folder is None
    if computed:
        train, test = encoding.split_houses(usable, test_size, seed)
        encoders = encoding.fit_encoders(train, usable)
        encoders["tile_size"] = montages.tile_size
        with cache.write(STAGE, key) as tmp:
            _write_splits(tmp, {"train": train, "test": test}, montages, encoders)
            (tmp / "encoders.json").write_text(json.dumps(encoders, indent=2))
            (tmp / "split.json").write_text(json.dumps(
                {"train": sorted(train["house"].tolist()), "test": sorted(test["house"].tolist())}))
        folder = cache.entry_path(STAGE, key)
    split = json.loads((folder / "split.json").read_text())
    encoders = json.loads((folder / "encoders.json").read_text())
    return Dataset(folder, montages.tile_size, len(split["train"]), len(split["test"]),
                   encoders["zipcodes"], computed)


@dataclass
class Preprocessed:
    """What the preprocess flow hands to the next flow: the dataset and the run's summary."""

    dataset: Dataset
    summary: dict


def straddling_groups(dataset: Dataset) -> list[int]:
    """The duplicate groups with houses in both train and test (none, by construction)."""
    train, test = (set(parquet.read_table(path, columns=["group"])["group"].to_pylist())
                   for path in (dataset.train_path, dataset.test_path))
    return sorted(train & test)


def summarize(parameters: dict, houses_read: int, skipped: list[dict], montages: Montages,
              dataset: Dataset, duplicates: dict | None = None) -> dict:
    """What a person (and the next stage) needs to know about one preprocessing run."""
    found = {} if duplicates is None else {"duplicates": {**duplicates,
                                                          "straddling_train_test": straddling_groups(dataset)}}
    return {
        "houses_read": houses_read,
        "houses_kept": dataset.n_train + dataset.n_test,
        "zipcodes_kept": len(dataset.zipcodes),
        "zipcodes": dataset.zipcodes,
        "train": dataset.n_train,
        "test": dataset.n_test,
        "skipped": skipped + montages.failed,
        "parameters": parameters,
        "dataset": str(dataset.folder),
        "cache": {
            "montage_shards_built": montages.computed,
            "montage_shards_reused": montages.reused,
            "dataset_built": dataset.computed,
        },
        **found,
    }

