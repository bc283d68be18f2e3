"""Labelled image datasets for the classifiers: read, validate, split, resize and cache as Parquet.

Two layouts:
- an image folder whose sub-folder names carry the labels joined by `_` (`red_dress/`,
  `blue_jeans/`: the tutorials'), one label column per part, named by `--label-names`;
- a CSV manifest with a `path` column (relative to the CSV's folder, or absolute) and one column
  per label; optional `group` (images of one group, e.g. one house, stay on one side of the split)
  and `split` (`train`/`test`, used as given).

The cache entry `CACHE/labelled-images/KEY/images.parquet` holds one row per image: path, the
label columns, group, split, sha256 and `image` (BGR uint8 bytes, size x size x 3). The key covers
the table of paths and labels, every image's content hash, the size and the code version.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa

from tasks.core import hashing, parquet
from tasks.core.cache import Cache
from tasks.core.errors import DataError, DataErrors
from tasks.core.images import images_by_subfolder, read_image
from tasks.core.prefect_cache import cacheable

RESERVED_COLUMNS = ("path", "group", "split")
STAGE = "labelled-images"
BATCH_ROWS = 256  # images decoded per batch (a cluster task) and per Parquet row group
OnBadImage = Literal["fail", "skip"]
BAD_IMAGE_HINT = "replace the file or remove its row, or pass --on-bad-image skip to leave it out"
SKIP_HINT = "Fix these, or pass --on-bad-image skip to leave the affected images out."


@cacheable
@dataclass
class LabelledImages:
    """A cached, resized, split labelled image set."""

    folder: Path
    label_columns: list[str]
    size: int
    n_train: int
    n_test: int
    skipped: list[dict]
    computed: bool

    def replayed(self) -> LabelledImages:
        """This result read back from Prefect's cache: the image set was reused."""
        return dataclasses.replace(self, computed=False)

    @property
    def path(self) -> Path:
        return self.folder / "images.parquet"

    def table(self, columns: list[str] | None = None) -> pd.DataFrame:
        return parquet.read_table(self.path, columns=columns).to_pandas()


def read_folder_layout(folder: Path, label_names: list[str]) -> pd.DataFrame:
    """One row per image of each sub-folder; the sub-folder name split on `_` gives the labels."""
    rows = []
    for path, name in images_by_subfolder(folder):
        parts = name.split("_")
        if len(parts) != len(label_names) or not all(parts):
            raise DataError(f"sub-folder name has {len(parts)} label(s) joined by '_' but --label-names names "
                            f"{len(label_names)} ({','.join(label_names)}); rename the folder or give "
                            "--label-names with one name per part", path.parent)
        rows.append({"path": str(path), **dict(zip(label_names, parts, strict=True))})
    if not rows:
        raise DataError("no images in labelled sub-folders (e.g. red_dress/*.jpg)", folder)
    return pd.DataFrame(rows)


def read_manifest(path: Path) -> pd.DataFrame:
    """A CSV manifest: `path` plus label columns (and optional group, split), validated line by line."""
    if not path.is_file():
        raise DataError("manifest not found", path)
    with open(path, newline="", encoding="utf-8-sig") as handle:  # a byte-order mark is passed over
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if "path" not in header:
            raise DataError(f"manifest header lacks a 'path' column; header is {header}", path, 1)
        labels = [name for name in header if name not in RESERVED_COLUMNS]
        if not labels:
            raise DataError("manifest has no label column (columns other than path, group, split)", path, 1)
        rows, problems = [], []
        for line, fields in enumerate(reader, start=2):
            if not fields:
                continue
            if len(fields) != len(header):
                problems.append(DataError(f"expected {len(header)} fields, found {len(fields)}", path, line))
                continue
            row = dict(zip(header, (f.strip() for f in fields), strict=True))
            empty = [name for name in labels if not row[name]]
            if empty:
                problems.append(DataError(f"empty label(s): {', '.join(empty)}", path, line))
            elif "split" in row and row["split"] not in ("train", "test"):
                problems.append(DataError(f"split must be train or test, got {row['split']!r}", path, line))
            else:
                image = Path(row["path"])
                row["path"] = str(image if image.is_absolute() else os.path.normpath(path.parent / image))
                rows.append(row)
    if problems:
        raise DataErrors(problems, "Fix these lines of the manifest.")
    if not rows:
        raise DataError("manifest lists no images", path)
    return pd.DataFrame(rows, columns=header)


def read_labels(source: Path, label_names: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """(table of path + labels [+ group, split], label column names) from a folder or a CSV manifest."""
    table = read_manifest(source) if source.suffix.lower() == ".csv" else read_folder_layout(source, label_names)
    return table, [c for c in table.columns if c not in RESERVED_COLUMNS]


def assign_split(table: pd.DataFrame, label_columns: list[str], test_size: float, seed: int) -> pd.Series:
    """`split` as given; else by group (a group never straddles); else stratified by label combination."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    if "split" in table.columns:
        return table["split"]
    rows = np.arange(len(table))
    if "group" in table.columns:
        train, _ = next(GroupShuffleSplit(1, test_size=test_size, random_state=seed).split(rows, groups=table["group"]))
    else:
        combos = table[label_columns].agg("_".join, axis=1)
        stratify = combos if combos.value_counts().min() >= 2 else None
        train, _ = train_test_split(rows, test_size=test_size, random_state=seed, stratify=stratify)
    split = np.full(len(table), "test", dtype=object)
    split[train] = "train"
    return pd.Series(split, index=table.index)


def load_image(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) BGR uint8; DataError naming the file if it is missing or cannot be decoded."""
    image = read_image(Path(path), size, BAD_IMAGE_HINT)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def _content_key(table: pd.DataFrame, size: int) -> str:
    return hashing.digest(STAGE, table.to_dict(orient="records"), size, hashing.code_version(sys.modules[__name__]))


def plan_labelled_images(source: Path, label_names: list[str], size: int, test_size: float, seed: int,
                         on_bad_image: OnBadImage = "fail") -> tuple[pd.DataFrame, list[str], list[DataError], str]:
    """(labels table with hashes and split, label columns, missing images, content key) of an image set."""
    table, label_columns = read_labels(source, label_names)
    hashes, problems = [], []
    for path in table["path"]:
        try:
            hashes.append(hashing.file_sha256(Path(path)))
        except OSError:
            hashes.append("")
            problems.append(DataError("image not found; fix the path or remove the row", path))
    table = table.assign(sha256=hashes)
    if problems and on_bad_image == "fail":
        raise DataErrors(problems, SKIP_HINT)
    table = table.assign(split=assign_split(table, label_columns, test_size, seed))
    if "group" not in table.columns:
        table = table.assign(group=table["path"])
    table = table.astype({"group": str})
    return table, label_columns, problems, _content_key(table, size)


@dataclass
class DecodedBatch:
    """Images of one batch of rows, resized: the rows kept, their BGR bytes, and the images left out."""

    rows: list[int]
    images: list[bytes]
    skipped: list[dict]


def decode_batch(paths: list[str], rows: list[int], size: int, on_bad_image: OnBadImage) -> DecodedBatch:
    """Read and resize the images at `paths` (rows of the table); a bad one fails or is skipped."""
    done = DecodedBatch([], [], [])
    for row, path in zip(rows, paths, strict=True):
        try:
            done.images.append(load_image(Path(path), size).tobytes())
            done.rows.append(row)
        except DataError as error:
            if on_bad_image == "fail":
                raise
            done.skipped.append({"path": str(path), "problem": error.message})
    return done


def row_batches(table: pd.DataFrame) -> list[tuple[list[str], list[int]]]:
    """(paths, rows) of the images to decode, BATCH_ROWS a batch (one Parquet row group each, wherever decoded,
    so a cluster writes the same file as one process); rows whose image was not found are left out."""
    paths = [str(path) for path in table["path"]]
    rows = [row for row, sha in enumerate(table["sha256"]) if sha]
    return [([paths[r] for r in rows[i:i + BATCH_ROWS]], rows[i:i + BATCH_ROWS])
            for i in range(0, len(rows), BATCH_ROWS)]


def build_labelled_images(cache: Cache, source: Path, label_names: list[str], size: int, test_size: float,
                          seed: int, on_bad_image: OnBadImage = "fail",
                          decode: Callable[[list], Iterable[DecodedBatch]] | None = None) -> LabelledImages:
    """Read, validate, hash, split, resize and cache a labelled image set (reused when unchanged). The images are
    decoded batch by batch (`decode`: the batches of `row_batches` -> their DecodedBatch in order; by default
    here, else on a cluster's workers) and written a row group at a time: memory holds one batch."""
    table, label_columns, problems, key = plan_labelled_images(source, label_names, size, test_size, seed,
                                                               on_bad_image)
    found = cache.lookup(STAGE, key)
    if found is not None:
        summary = json.loads((found / "summary.json").read_text())
        return LabelledImages(found, label_columns, size, summary["n_train"], summary["n_test"],
                              summary["skipped"], computed=False)
    batches = row_batches(table)
    decoded = decode(batches) if decode else (decode_batch(*batch, size, on_bad_image) for batch in batches)
    columns = ["path", *label_columns, "group", "split", "sha256"]
    skipped = [{"path": str(p.path), "problem": p.message} for p in problems]
    counts = {"train": 0, "test": 0}
    with cache.write(STAGE, key) as tmp:
        writer = None
        for batch in decoded:
            skipped += batch.skipped
            if not batch.rows:
                continue
            part = table.iloc[batch.rows]
            arrow = pa.Table.from_pandas(part[columns], preserve_index=False).append_column(
                "image", pa.array(batch.images, pa.binary()))
            writer = writer or parquet.writer(tmp / "images.parquet", arrow.schema)
            writer.write_table(arrow)
            for split, count in part["split"].value_counts().items():
                counts[split] += int(count)
        if writer is None:
            raise DataError("no usable image left after skipping bad ones", source)
        writer.close()
        if not counts["train"] or not counts["test"]:
            raise DataError(f"the split left {counts['train']} train and {counts['test']} test images; "
                            "give more images or another --test-size", source)
        summary = {"source": str(source), "label_columns": label_columns, "size": size,
                   "n_train": counts["train"], "n_test": counts["test"], "skipped": skipped}
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    return LabelledImages(cache.entry_path(STAGE, key), label_columns, size, summary["n_train"], summary["n_test"],
                          skipped, computed=True)


def decode_images(blobs, size: int) -> np.ndarray:
    """Parquet `image` bytes -> (N, size, size, 3) float32 BGR in [0, 1]."""
    flat = np.frombuffer(b"".join(blobs), np.uint8) if len(blobs) else np.zeros(0, np.uint8)
    return flat.reshape(-1, size, size, 3).astype(np.float32) / 255.0


def split_rows(images: LabelledImages, split: str) -> np.ndarray:
    """Row positions of one split in images.parquet."""
    return np.flatnonzero(images.table(["split"])["split"].to_numpy() == split)


def iter_image_batches(images: LabelledImages, rows: np.ndarray,
                       chunk_rows: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(row positions, (n, size, size, 3) images) for the given rows, read row group by row group."""
    parquet_file = parquet.open_file(images.path)
    wanted = np.zeros(parquet_file.metadata.num_rows, bool)
    wanted[rows] = True
    start = 0
    for batch in parquet_file.iter_batches(batch_size=chunk_rows, columns=["image"]):
        positions = np.arange(start, start + batch.num_rows)
        start += batch.num_rows
        keep = positions[wanted[positions]]
        if len(keep):
            blobs = batch.column("image").to_pylist()
            yield keep, decode_images([blobs[i - positions[0]] for i in keep], images.size)
