"""Ingest: read the attributes file, pair each house with its four photos, hash every input.

A Houses-format folder holds `HousesInfo.txt` (one line per house, in order, five
space-separated numbers: bedrooms bathrooms area zipcode price) or one CSV file with a header
naming those columns (plus an optional `house` column with the house number), and four photos
per house named `{n}_{bathroom,bedroom,frontal,kitchen}.{jpg,jpeg,png}`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks.core.errors import DataError, DataErrors
from tasks.core.files import atomic_path
from tasks.core.hashing import file_sha256
from tasks.core.parquet import padded_strings, release_unused_memory
from tasks.core.read_ahead import read_threads

# Sorted by file name, as in the tutorials: this is also the montage's tile order.
PHOTO_KINDS = ("bathroom", "bedroom", "frontal", "kitchen")
ATTRIBUTE_COLUMNS = ("bedrooms", "bathrooms", "area", "zipcode", "price")
SPACE_SEPARATED_NAME = "HousesInfo.txt"
PHOTO_NAME = r"(?i)^(?P<house>\d{1,18})_(?P<kind>bathroom|bedroom|frontal|kitchen)\.(?:jpe?g|png)$"  # RE2
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

OnBadHouse = Literal["fail", "skip"]
DuplicatePolicy = Literal["keep-one", "keep-all"]  # duplicate records: see tasks.houses.duplicates
SKIP_HINT = "Fix these, or pass --on-bad-house skip to leave the affected houses out."


@dataclass
class Ingested:
    """Houses that passed validation, with their photos' paths and hashes."""

    data_dir: Path
    attributes_file: Path
    houses: pd.DataFrame  # house, ATTRIBUTE_COLUMNS, photo_<kind>, sha_<kind>
    attributes_sha256: str
    skipped: list[dict] = field(default_factory=list)
    houses_read: int = 0
    notes: list[str] = field(default_factory=list)  # what was passed over, for the log

    @property
    def manifest(self) -> dict:
        """{"attributes": {file: sha256}, "photos": {file: sha256}} of every input kept, built when asked (the
        table already holds each photo's name and hash: no second copy of them in memory between stages)."""
        photos = {name: sha for kind in PHOTO_KINDS
                  for name, sha in zip(self.houses[f"photo_{kind}"], self.houses[f"sha_{kind}"])}
        return {"attributes": {self.attributes_file.name: self.attributes_sha256},
                "photos": dict(sorted(photos.items()))}

    def write_manifest(self, path: Path, block: int = 10000) -> Path:
        """The manifest as JSON (json.dumps(manifest, indent=2), byte for byte), written `block` photos at a
        time from the table's Arrow columns: no dict of every photo's name and hash in memory at once."""
        names, shas = (pa.concat_arrays([_arrow(self.houses[f"{column}_{kind}"]) for kind in PHOTO_KINDS])
                       for column in ("photo", "sha"))
        order = pc.sort_indices(names)  # UTF-8 bytes sort as the code points Python sorts by
        attributes = f"{json.dumps(self.attributes_file.name)}: {json.dumps(self.attributes_sha256)}"
        with atomic_path(path) as tmp, open(tmp, "w") as out:
            out.write(f'{{\n  "attributes": {{\n    {attributes}\n  }},\n  "photos": {{' if len(order) else
                      f'{{\n  "attributes": {{\n    {attributes}\n  }},\n  "photos": {{}}\n}}\n')
            for start in range(0, len(order), block):
                rows = order.slice(start, block)
                out.write(",\n    " if start else "\n    ")
                out.write(",\n    ".join(f"{json.dumps(name)}: {json.dumps(sha)}" for name, sha in
                                          zip(names.take(rows).to_pylist(), shas.take(rows).to_pylist())))
            if len(order):
                out.write("\n  }\n}\n")
        return path


def _arrow(column: pd.Series) -> pa.Array:
    """A column's Arrow array (one chunk)."""
    array = pa.array(column)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def find_attributes_file(data_dir: Path) -> Path:
    if not data_dir.is_dir():
        raise DataError("data folder does not exist; pass --data with a Houses-format folder", data_dir)
    space_separated = data_dir / SPACE_SEPARATED_NAME
    if space_separated.is_file():
        return space_separated
    csvs = sorted(data_dir.glob("*.csv"))
    if len(csvs) == 1:
        return csvs[0]
    if not csvs:
        raise DataError(f"no attributes file: expected {SPACE_SEPARATED_NAME} or one .csv file", data_dir)
    names = ", ".join(p.name for p in csvs)
    raise DataError(f"several .csv files ({names}); keep exactly one attributes file", data_dir)


def _parse_number(text: str, column: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{column} is not a number: {text!r}", path, line) from None
    if not math.isfinite(value):
        raise DataError(f"{column} is not a finite number: {text!r}", path, line)
    return value


def _validate_row(values: dict[str, float], path: Path, line: int) -> None:
    for column in ("area", "price"):
        if values[column] <= 0:
            raise DataError(f"{column} must be positive, got {values[column]:g}", path, line)
    for column in ("bedrooms", "bathrooms"):
        if values[column] < 0:
            raise DataError(f"{column} must not be negative, got {values[column]:g}", path, line)
    if values["zipcode"] != int(values["zipcode"]) or values["zipcode"] <= 0:
        raise DataError(f"zipcode must be a positive whole number, got {values['zipcode']:g}", path, line)


@dataclass
class Attributes:
    """The attributes file read: good houses, one problem per bad line (with its house), and notes on
    what was passed over because its meaning is clear (as the tutorials' pandas reader does)."""

    houses: pd.DataFrame  # house, line, ATTRIBUTE_COLUMNS
    problems: list[tuple[int, DataError]]  # (house, problem)
    notes: list[str]


def _text(path: Path, notes: list[str]) -> str:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DataError("not a text file (or not UTF-8); save it as plain UTF-8 text", path) from None
    if text.startswith("\ufeff"):
        notes.append(f"{path.name}: passed over the byte-order mark at its start")
        text = text[1:]
    lines = text.splitlines()
    trailing = 0
    while lines and not lines[-1].strip():
        lines.pop()
        trailing += 1
    if trailing and lines:
        notes.append(f"{path.name}: passed over {trailing} blank line(s) at its end")
    return "\n".join(lines)


def _rows_space_separated(path: Path, text: str) -> Iterator[tuple[int, int, list[str]]]:
    """(house number, line number, fields) line by line; house n is line n."""
    for n, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        first = [f.lower() for f in fields]
        if n == 1 and sorted(first) == sorted(ATTRIBUTE_COLUMNS):
            raise DataError(f"line 1 is a header ({' '.join(first)}), but {SPACE_SEPARATED_NAME} has none: line n "
                            "holds house n; remove the header, or save the table as a .csv file with a header", path, 1)
        yield n, n, fields


def _rows_csv(path: Path, text: str, notes: list[str]) -> Iterator[tuple[int, int, list[str]]]:
    """(house number, line number, fields) line by line; blank lines are passed over (they are no row)."""
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in ATTRIBUTE_COLUMNS if c not in header]
    if missing:
        raise DataError(f"CSV header lacks column(s) {', '.join(missing)}; header is {header}", path, 1)
    order = [header.index(c) for c in ATTRIBUTE_COLUMNS]
    house_col = header.index("house") if "house" in header else None
    blank, position = [], 0
    for line, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            blank.append(line)
            continue
        position += 1
        if len(fields) != len(header):
            yield position, line, fields  # reported as a field-count problem by the reader
            continue
        number = position
        if house_col is not None:
            try:
                number = int(fields[house_col])
            except ValueError:
                raise DataError(f"house is not a whole number: {fields[house_col]!r}", path, line) from None
        yield number, line, [fields[i].strip() for i in order]
    if blank:
        notes.append(f"{path.name}: passed over blank line(s) {', '.join(map(str, blank[:10]))}"
                     + (" ..." if len(blank) > 10 else ""))


def read_attributes(path: Path) -> Attributes:
    """Parse and validate every line: the good houses, one problem per bad line, and notes."""
    notes: list[str] = []
    text = _text(path, notes)
    if not text.strip():
        raise DataError("the attributes file is empty", path)
    is_csv = path.suffix.lower() == ".csv"
    rows = _rows_csv(path, text, notes) if is_csv else _rows_space_separated(path, text)
    columns: dict[str, list] = {c: [] for c in ("house", "line", *ATTRIBUTE_COLUMNS)}  # a list per column, not a
    problems, seen = [], {}                                                          # dict per house
    for number, line, fields in rows:
        if not is_csv and not fields:
            problems.append((number, DataError(f"empty line (house {number} has no attributes; line n holds house n, "
                                               "so a blank line cannot be passed over)", path, line)))
            continue
        if len(fields) != len(ATTRIBUTE_COLUMNS):
            problems.append((number, DataError(
                f"expected {len(ATTRIBUTE_COLUMNS)} fields ({' '.join(ATTRIBUTE_COLUMNS)}), "
                f"found {len(fields)}", path, line)))
            continue
        try:
            values = {c: _parse_number(f, c, path, line) for c, f in zip(ATTRIBUTE_COLUMNS, fields)}
            _validate_row(values, path, line)
        except DataError as error:
            problems.append((number, error))
            continue
        if number in seen:
            problems.append((number, DataError(f"house {number} also appears on line {seen[number]}", path, line)))
            continue
        seen[number] = line
        for column, value in (("house", number), ("line", line), *values.items()):
            columns[column].append(value)
    if not columns["house"] and not problems:
        raise DataError("the attributes file has no houses", path)
    frame = pd.DataFrame({c: np.array(v, np.int64 if c in ("house", "line", "zipcode") else np.float64)
                          for c, v in columns.items()})
    return Attributes(frame, problems, notes)


def photo_table(data_dir: Path) -> pd.DataFrame:
    """house (int64), kind, name of every photo file of the folder, in house and kind order (of two files of one
    house and kind, the first name in sorted order). Built from the listing as Arrow columns: no Python object
    per photo once it is done."""
    names = pa.array(os.listdir(data_dir), pa.string())
    parts = pc.extract_regex(names, PHOTO_NAME)
    found = parts.is_valid()
    parts = parts.filter(found)
    table = pa.table({"house": pc.cast(parts.field("house"), pa.int64()), "kind": pc.utf8_lower(parts.field("kind")),
                      "name": names.filter(found)})
    frame = table.sort_by([("house", "ascending"), ("kind", "ascending"), ("name", "ascending")]).to_pandas()
    return frame.drop_duplicates(["house", "kind"]).reset_index(drop=True)


def find_photos(data_dir: Path) -> dict[int, dict[str, Path]]:
    """house -> kind -> path of a folder's photos (for a few houses: a Python object per photo)."""
    found: dict[int, dict[str, Path]] = {}
    for house, kind, name in photo_table(data_dir).itertuples(index=False):
        found.setdefault(house, {})[kind] = data_dir / name
    return found


@dataclass
class Listing:
    """A Houses-format folder read without opening a photo: the attributes, each house's photo names, what is
    wrong so far; `names` are the photos to inspect (inspect_photos), house by house and kind by kind."""

    data_dir: Path
    attributes_file: Path
    houses: pd.DataFrame  # house, line, ATTRIBUTE_COLUMNS, photo_<kind> ("" where missing), in the file's order
    problems: list[DataError]  # lines of the attributes file, photos of houses it has no line for
    bad: dict[int, str]  # house -> the first problem found with it
    missing: list[tuple[int, int, DataError]]  # (row, kind index, problem): photos not in the folder
    houses_read: int
    notes: list[str]
    names: np.ndarray  # (P,) S: the photos present, of the houses with valid attributes
    rows: np.ndarray  # (P,) int64: their rows of `houses`
    kinds: np.ndarray  # (P,) int8: their kind (index into PHOTO_KINDS)


def list_houses(data_dir: Path) -> Listing:
    """Read the attributes file and pair each house with its photos' names."""
    data_dir = Path(data_dir)
    attributes_file = find_attributes_file(data_dir)
    attributes = read_attributes(attributes_file)
    frame = attributes.houses
    problems = [problem for _, problem in attributes.problems]
    bad = {house: str(problem) for house, problem in attributes.problems}  # house -> reason, for the summary

    photos = photo_table(data_dir)
    orphans = np.setdiff1d(photos["house"].to_numpy(), np.union1d(frame["house"].to_numpy(), list(bad)))
    for number in orphans.tolist():
        problem = DataError(f"photos for house {number} but {attributes_file.name} has no line for it", data_dir)
        problems.append(problem)
        bad[number] = str(problem)

    missing = []
    for index, kind in enumerate(PHOTO_KINDS):
        of_kind = photos[photos["kind"] == kind].set_index("house")["name"]
        column = of_kind.reindex(frame["house"]).reset_index(drop=True)
        for row in np.flatnonzero(column.isna().to_numpy()).tolist():
            number = int(frame["house"].iat[row])
            missing.append((row, index, DataError(f"photo is missing (house {number}, {kind})",
                                                  data_dir / f"{number}_{kind}.jpg")))
        frame[f"photo_{kind}"] = column.fillna("")
    del photos

    matrix = photo_names(frame)
    rows, kinds = np.nonzero(matrix != b"")
    release_unused_memory()  # the listing's sort and regex pages, else kept by the allocator
    return Listing(data_dir, attributes_file, frame, problems, bad, missing, len(frame) + len(attributes.problems),
                   attributes.notes, matrix[rows, kinds], rows.astype(np.int64), kinds.astype(np.int8))


def photo_names(houses: pd.DataFrame) -> np.ndarray:
    """(N, 4) S: each house's photo file names in PHOTO_KINDS order, from the table's Arrow buffers (no Python
    string per photo; b"" where one is missing)."""
    return np.stack([padded_strings(pa.array(houses[f"photo_{kind}"])) for kind in PHOTO_KINDS], axis=1)


def inspect_photo(path: str, hash_photo: bool = True) -> tuple[bytes, str | None]:
    """(sha256 hex digest, b"" without `hash_photo`; problem or None) of one photo, read once: empty, not a JPEG
    or PNG, unreadable. Full decoding happens when montages are built."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if not head:
                return b"", "photo is empty (0 bytes)"
            if not (head.startswith(JPEG_MAGIC) or head.startswith(PNG_MAGIC)):
                return b"", "photo is not a JPEG or PNG image"
            if not hash_photo:
                return b"", None
            handle.seek(0)
            return hashlib.file_digest(handle, "sha256").hexdigest().encode(), None
    except OSError as error:
        return b"", f"photo cannot be read ({error.strerror or error})"


def inspect_photos(data_dir: Path, names: np.ndarray, workers: int, hash_photos: bool = True,
                   chunk: int = 512) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Every photo of `names` ((P,) S file names under `data_dir`) inspected, a chunk at a time, on the threads
    that `workers` cores read files with (a read mostly waits on the disk; hashlib releases the GIL): their (P,)
    S64 sha256 hex digests (b"" where a problem was found) and the problems by position. Paths are plain strings
    (pathlib would intern every name for good)."""
    folder = os.fspath(data_dir)
    digests = np.zeros(len(names), "S64")
    problems = []
    with ThreadPoolExecutor(max_workers=read_threads(workers)) as pool:
        for start in range(0, len(names), chunk):
            paths = [os.path.join(folder, name.decode()) for name in names[start:start + chunk]]
            for at, (sha, problem) in enumerate(pool.map(inspect_photo, paths, [hash_photos] * len(paths)), start):
                digests[at] = sha
                if problem:
                    problems.append((at, problem))
    return digests, problems


def ingested(listing: Listing, digests: np.ndarray, problems: list[tuple[int, str]],
             on_bad_house: OnBadHouse) -> Ingested:
    """The houses that passed, with their photos' hashes, from a listing and its photos' inspection (`digests`,
    `problems`: inspect_photos' result for `listing.names`); DataErrors listing every problem in `fail` mode."""
    frame = listing.houses.copy()
    found = list(listing.missing)
    for at, reason in problems:
        row, kind = int(listing.rows[at]), int(listing.kinds[at])
        number = int(frame["house"].iat[row])
        found.append((row, kind, DataError(f"{reason} (house {number}, {PHOTO_KINDS[kind]})",
                                           listing.data_dir / listing.names[at].decode())))
    all_problems, bad = list(listing.problems), dict(listing.bad)
    for row, _, problem in sorted(found, key=lambda item: item[:2]):
        all_problems.append(problem)
        bad.setdefault(int(frame["house"].iat[row]), str(problem))
    if all_problems and on_bad_house == "fail":
        raise DataErrors(all_problems, SKIP_HINT)

    shas = np.zeros((len(frame), len(PHOTO_KINDS)), "S64")
    shas[listing.rows, listing.kinds] = digests
    for index, kind in enumerate(PHOTO_KINDS):
        frame[f"sha_{kind}"] = pd.Series(pa.array(shas[:, index]).cast(pa.string()), index=frame.index)
    frame = frame[~frame["house"].isin(list(bad))].sort_values("house").reset_index(drop=True)
    release_unused_memory()
    if frame.empty:
        raise DataErrors(all_problems, SKIP_HINT) if all_problems else DataError("no houses to read", listing.data_dir)
    skipped = [{"house": n, "reason": r} for n, r in sorted(bad.items())]
    return Ingested(listing.data_dir, listing.attributes_file, frame, file_sha256(listing.attributes_file), skipped,
                    listing.houses_read, listing.notes)


def hashes_needed(listing: Listing, on_bad_house: OnBadHouse) -> bool:
    """Whether the photos' inspection must hash them: not when the run fails anyway (only their problems count)."""
    return on_bad_house == "skip" or not (listing.problems or listing.missing)


def ingest_houses(data_dir: Path, on_bad_house: OnBadHouse = "fail", workers: int = 2) -> Ingested:
    """Read and validate a Houses-format folder in this process; raise DataErrors listing every problem found."""
    listing = list_houses(data_dir)
    digests, problems = inspect_photos(listing.data_dir, listing.names, workers, hashes_needed(listing, on_bad_house))
    return ingested(listing, digests, problems, on_bad_house)
