"""Ingest: read the attributes file, pair each house with its four photos, hash every input.

A Houses-format folder holds `HousesInfo.txt` (one line per house, in order, five
space-separated numbers: bedrooms bathrooms area zipcode price) or one CSV file with a header
naming those columns (plus an optional `house` column with the house number), and four photos
per house named `{n}_{bathroom,bedroom,frontal,kitchen}.{jpg,jpeg,png}`.
"""

from __future__ import annotations

import csv
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from tasks.core.errors import DataError, DataErrors
from tasks.core.hashing import file_sha256

# Sorted by file name, as in the tutorials: this is also the montage's tile order.
PHOTO_KINDS = ("bathroom", "bedroom", "frontal", "kitchen")
ATTRIBUTE_COLUMNS = ("bedrooms", "bathrooms", "area", "zipcode", "price")
SPACE_SEPARATED_NAME = "HousesInfo.txt"
PHOTO_NAME = re.compile(r"^(\d+)_(bathroom|bedroom|frontal|kitchen)\.(jpe?g|png)$", re.IGNORECASE)
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


def _rows_space_separated(path: Path, text: str) -> list[tuple[int, int, list[str]]]:
    """(house number, line number, fields); house n is line n."""
    rows = [(n, n, line.split()) for n, line in enumerate(text.splitlines(), start=1)]
    first = [f.lower() for f in rows[0][2]] if rows else []
    if sorted(first) == sorted(ATTRIBUTE_COLUMNS):
        raise DataError(f"line 1 is a header ({' '.join(first)}), but {SPACE_SEPARATED_NAME} has none: line n holds "
                        "house n; remove the header, or save the table as a .csv file with a header", path, 1)
    return rows


def _rows_csv(path: Path, text: str, notes: list[str]) -> list[tuple[int, int, list[str]]]:
    """(house number, line number, fields); blank lines are passed over (they are no row)."""
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in ATTRIBUTE_COLUMNS if c not in header]
    if missing:
        raise DataError(f"CSV header lacks column(s) {', '.join(missing)}; header is {header}", path, 1)
    order = [header.index(c) for c in ATTRIBUTE_COLUMNS]
    house_col = header.index("house") if "house" in header else None
    rows, blank, position = [], [], 0
    for line, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            blank.append(line)
            continue
        position += 1
        if len(fields) != len(header):
            rows.append((position, line, fields))  # reported as a field-count problem below
            continue
        number = position
        if house_col is not None:
            try:
                number = int(fields[house_col])
            except ValueError:
                raise DataError(f"house is not a whole number: {fields[house_col]!r}", path, line) from None
        rows.append((number, line, [fields[i].strip() for i in order]))
    if blank:
        notes.append(f"{path.name}: passed over blank line(s) {', '.join(map(str, blank[:10]))}"
                     + (" ..." if len(blank) > 10 else ""))
    return rows


def read_attributes(path: Path) -> Attributes:
    """Parse and validate every line: the good houses, one problem per bad line, and notes."""
    notes: list[str] = []
    text = _text(path, notes)
    if not text.strip():
        raise DataError("the attributes file is empty", path)
    is_csv = path.suffix.lower() == ".csv"
    rows = _rows_csv(path, text, notes) if is_csv else _rows_space_separated(path, text)
    records, problems, seen = [], [], {}
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
        records.append({"house": number, "line": line, **values})
    if not records and not problems:
        raise DataError("the attributes file has no houses", path)
    frame = pd.DataFrame.from_records(
        records, columns=["house", "line", *ATTRIBUTE_COLUMNS]
    ).astype({"house": "int64", "line": "int64", "zipcode": "int64"})
    return Attributes(frame, problems, notes)


def _check_photo(path: Path) -> str | None:
    """A cheap up-front check; full decoding happens when montages are built."""
    size = path.stat().st_size
    if size == 0:
        return "photo is empty (0 bytes)"
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not (head.startswith(JPEG_MAGIC) or head.startswith(PNG_MAGIC)):
        return "photo is not a JPEG or PNG image"
    return None


def find_photos(data_dir: Path) -> dict[int, dict[str, Path]]:
    return {number: {kind: data_dir / name for kind, name in kinds.items()}
            for number, kinds in _photo_names(data_dir).items()}


def _photo_names(data_dir: Path) -> dict[int, dict[str, str]]:
    """house -> kind -> file name (names, not paths: a few dozen bytes a photo, for hundreds of thousands)."""
    names: dict[int, dict[str, str]] = {}
    with os.scandir(data_dir) as entries:
        for entry in entries:
            match = PHOTO_NAME.match(entry.name)
            if match:
                names.setdefault(int(match[1]), {})[match[2].lower()] = entry.name
    return names


def _sha256_of_files(data_dir: Path, names: list[str], workers: int, chunk: int = 512) -> list[str]:
    """sha256 of each file, on `workers` threads (hashlib releases the GIL), a chunk at a time: a future per
    file submitted at once would cost about 2 KB each until the last is done."""
    hashes: list[str] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(names), chunk):
            hashes.extend(pool.map(file_sha256, [data_dir / name for name in names[start:start + chunk]]))
    return hashes


def ingest_houses(data_dir: Path, on_bad_house: OnBadHouse = "fail", workers: int = 2) -> Ingested:
    """Read and validate a Houses-format folder; raise DataErrors listing every problem found."""
    data_dir = Path(data_dir)
    attributes_file = find_attributes_file(data_dir)
    attributes = read_attributes(attributes_file)
    frame = attributes.houses
    problems = [problem for _, problem in attributes.problems]
    houses_read = len(frame) + len(problems)  # one per line of the attributes file
    bad = {house: str(problem) for house, problem in attributes.problems}  # house -> reason, for the summary

    photos = _photo_names(data_dir)
    for number in sorted(set(photos) - set(frame["house"]) - set(bad)):
        problem = DataError(
            f"photos for house {number} but {attributes_file.name} has no line for it", data_dir)
        problems.append(problem)
        bad[number] = str(problem)

    photo_columns = {kind: [] for kind in PHOTO_KINDS}
    for number in frame["house"]:
        for kind in PHOTO_KINDS:
            name = photos.get(number, {}).get(kind)
            reason = "photo is missing" if name is None else _check_photo(data_dir / name)
            if reason:
                problem = DataError(f"{reason} (house {number}, {kind})", data_dir / (name or f"{number}_{kind}.jpg"))
                problems.append(problem)
                bad.setdefault(number, str(problem))
            photo_columns[kind].append(name or "")
    del photos

    if problems and on_bad_house == "fail":
        raise DataErrors(problems, SKIP_HINT)
    for kind in PHOTO_KINDS:
        frame[f"photo_{kind}"] = photo_columns[kind]
    frame = frame[~frame["house"].isin(bad)].sort_values("house").reset_index(drop=True)
    if frame.empty:
        raise DataErrors(problems, SKIP_HINT) if problems else DataError("no houses to read", data_dir)

    for kind in PHOTO_KINDS:
        frame[f"sha_{kind}"] = _sha256_of_files(data_dir, list(frame[f"photo_{kind}"]), workers)
    skipped = [{"house": n, "reason": r} for n, r in sorted(bad.items())]
    return Ingested(data_dir, attributes_file, frame, file_sha256(attributes_file), skipped, houses_read,
                    attributes.notes)
