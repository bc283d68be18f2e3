"""Duplicate houses and photos: the same listing twice, or photos shared between houses or rooms.

Found at ingest, on every house read (before the zip-code filter):
- byte-identical photos (the same sha256, which ingest computes anyway);
- near-identical photos: a perceptual hash (imagehash's pHash: the DCT of a 32x32 grey thumbnail, 64 bits)
  within NEAR_IDENTICAL_BITS bits of another's. On the real data the copies that are not byte-identical
  (re-encoded or re-cropped re-listings) are 0-2 bits apart and the closest distinct photos 10 bits apart;
- duplicate records: the same bedrooms, bathrooms, area, zip code and price.

Houses that share a photo (identical or near-identical) or are the same record form one group; every split
keeps a group on one side (tasks.core.splits). A photo used for two rooms of one house is a warning naming
the files. `--duplicates keep-one` (default) keeps the first house (lowest number) of each set of duplicate
records and leaves the others out; `keep-all` keeps them, grouped.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.cache import Cache
from tasks.core.hashing import code_version, digest
from tasks.core.images import read_image
from tasks.houses.ingest import ATTRIBUTE_COLUMNS, PHOTO_KINDS, DuplicatePolicy

STAGE = "photo-hashes"
NEAR_IDENTICAL_BITS = 6  # of 64: real-data copies are 0-2 bits apart, distinct photos >= 10
HASH_SIDE = 64  # photos are decoded at a reduced JPEG scale, never below this side, before hashing
BLOCK = 2048  # photos compared at once: memory stays at BLOCK x photos bits


def perceptual_hash(path: Path) -> str:
    """The photo's 64-bit pHash as 16 hex digits (imagehash.phash of the grey image)."""
    import imagehash
    from PIL import Image

    image = read_image(path, HASH_SIDE)  # (H, W, 3) BGR
    return str(imagehash.phash(Image.fromarray(np.ascontiguousarray(image[:, :, ::-1])).convert("L")))


def perceptual_hashes(paths: dict[str, Path], workers: int = 2) -> dict[str, str]:
    """sha256 -> pHash of each distinct photo (`paths`: sha256 -> one file with that content)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV decodes without the GIL
        return dict(zip(paths, pool.map(perceptual_hash, paths.values())))


def cached_hashes(cache: Cache, data_dir: Path, houses: pd.DataFrame) -> dict[str, str]:
    """sha256 -> pHash of every photo of `houses`, from the cache entry of these photos' contents (a re-run
    with the same photos hashes nothing)."""
    paths = {row[f"sha_{kind}"]: Path(data_dir) / row[f"photo_{kind}"]
             for _, row in houses.iterrows() for kind in PHOTO_KINDS}
    key = digest(STAGE, code_version(sys.modules[__name__]), sorted(paths))
    folder = cache.lookup(STAGE, key)
    if folder is None:
        with cache.write(STAGE, key) as tmp:
            (tmp / "hashes.json").write_text(json.dumps(perceptual_hashes(paths)))
        folder = cache.entry_path(STAGE, key)
    return json.loads((folder / "hashes.json").read_text())


@dataclass
class Duplicates:
    """What was found, and the group of every house (its lowest house number; a house alone is its own)."""

    group_of: dict[int, int]  # every house read, the dropped copies too
    shared_photos: list[dict] = field(default_factory=list)  # {houses, files, how}: across houses
    same_photo_two_rooms: list[dict] = field(default_factory=list)  # {house, files, how}: within a house
    same_records: list[list[int]] = field(default_factory=list)  # houses with the same attributes and price
    dropped: list[int] = field(default_factory=list)  # keep-one: later copies of a record, left out

    def groups(self) -> list[list[int]]:
        """The groups of more than one kept house, by their first house."""
        members: dict[int, list[int]] = {}
        for house, group in sorted(self.group_of.items()):
            if house not in self.dropped:
                members.setdefault(group, []).append(house)
        return [houses for _, houses in sorted(members.items()) if len(houses) > 1]

    def summary(self) -> dict:
        """Counts and lists for summary.json (the data report)."""
        groups = self.groups()
        return {
            "counts": {"groups": len(groups), "houses_in_groups": sum(len(g) for g in groups),
                       "shared_photos": len(self.shared_photos), "same_photo_two_rooms": len(self.same_photo_two_rooms),
                       "duplicate_records": len(self.same_records), "dropped": len(self.dropped)},
            "groups": [{"houses": g, "why": self.why(g)} for g in groups],
            "shared_photos": self.shared_photos,
            "same_photo_two_rooms": self.same_photo_two_rooms,
            "duplicate_records": self.same_records,
            "dropped": self.dropped,
            "near_identical_bits": NEAR_IDENTICAL_BITS,
        }

    def why(self, houses: list[int]) -> list[str]:
        """What links the houses of a group (copies left out included: they can link two kept houses)."""
        group = self.group_of[houses[0]]
        reasons = [f"same record: houses {', '.join(map(str, r))}" for r in self.same_records
                   if self.group_of[r[0]] == group]
        reasons += [f"{item['how']} photo: {' = '.join(item['files'])}" for item in self.shared_photos
                    if self.group_of[item["houses"][0]] == group]
        return reasons


class _Groups:
    """Union-find over house numbers; a group is named by its lowest house."""

    def __init__(self, houses: list[int]):
        self.parent = {h: h for h in houses}

    def find(self, house: int) -> int:
        while self.parent[house] != house:
            self.parent[house] = self.parent[self.parent[house]]
            house = self.parent[house]
        return house

    def join(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def _hash_bits(hashes: list[str]) -> np.ndarray:
    """(N,) uint64 of 16-hex-digit hashes."""
    return np.array([int(h, 16) for h in hashes], dtype=np.uint64)


def near_pairs(hashes: list[str], max_bits: int) -> list[tuple[int, int, int]]:
    """(i, j, bits apart) of every pair i < j of hashes at most `max_bits` bits apart, in blocks of rows."""
    bits = _hash_bits(hashes)
    pairs = []
    for start in range(0, len(bits), BLOCK):
        block = bits[start:start + BLOCK]
        distance = np.bitwise_count(block[:, None] ^ bits[None, :])  # (B, N)
        for i, j in zip(*np.nonzero(distance <= max_bits)):
            if start + i < j:
                pairs.append((int(start + i), int(j), int(distance[i, j])))
    return pairs


def find_duplicates(houses: pd.DataFrame, phash: dict[str, str], policy: DuplicatePolicy = "keep-one",
                    max_bits: int = NEAR_IDENTICAL_BITS) -> Duplicates:
    """Groups of `houses` (house, ATTRIBUTE_COLUMNS, photo_<kind>, sha_<kind>) from shared photos and
    repeated records; `phash`: sha256 -> perceptual hash of every photo."""
    numbers = [int(h) for h in houses["house"]]
    groups = _Groups(numbers)
    photos = [(int(row["house"]), kind, row[f"photo_{kind}"], row[f"sha_{kind}"])
              for _, row in houses.iterrows() for kind in PHOTO_KINDS]
    found = Duplicates({})
    for i, j, bits in near_pairs([phash[sha] for *_, sha in photos], max_bits):
        (house_a, _, file_a, sha_a), (house_b, _, file_b, sha_b) = photos[i], photos[j]
        how = "identical" if sha_a == sha_b else f"near-identical ({bits} of 64 bits apart)"
        if house_a == house_b:
            found.same_photo_two_rooms.append({"house": house_a, "files": [file_a, file_b], "how": how})
        else:
            groups.join(house_a, house_b)
            found.shared_photos.append({"houses": sorted([house_a, house_b]), "files": [file_a, file_b], "how": how})
    records: dict[tuple, list[int]] = {}
    for number, values in zip(numbers, houses[list(ATTRIBUTE_COLUMNS)].itertuples(index=False)):
        records.setdefault(tuple(float(v) for v in values), []).append(number)
    for same in records.values():
        if len(same) > 1:
            found.same_records.append(sorted(same))
            for other in same[1:]:
                groups.join(same[0], other)
            if policy == "keep-one":
                found.dropped += sorted(same)[1:]
    found.same_records.sort()
    found.dropped.sort()
    found.group_of = {h: groups.find(h) for h in numbers}
    return found


def dedupe(cache: Cache, data_dir: Path, houses: pd.DataFrame,
           policy: DuplicatePolicy = "keep-one") -> tuple[pd.DataFrame, Duplicates]:
    """(the houses kept under `policy`, with their `group` column; what was found)."""
    found = find_duplicates(houses, cached_hashes(cache, data_dir, houses), policy)
    return apply_policy(houses, found), found


def apply_policy(houses: pd.DataFrame, found: Duplicates) -> pd.DataFrame:
    """The houses less the dropped copies, with their `group` column."""
    kept = houses[~houses["house"].isin(found.dropped)].reset_index(drop=True)
    return kept.assign(group=[found.group_of[int(h)] for h in kept["house"]])


def warnings(found: Duplicates) -> list[str]:
    """One line per photo used for two rooms of one house, naming the files."""
    return [f"house {item['house']}: one photo for two rooms ({item['how']}): {' and '.join(item['files'])}"
            for item in found.same_photo_two_rooms]


def markdown(found: Duplicates) -> str:
    """The duplicates part of the data report."""
    summary = found.summary()
    counts = summary["counts"]
    lines = ["# Duplicate houses and photos", "",
             f"{counts['groups']} group(s) of houses that share a photo or are the same record "
             f"({counts['houses_in_groups']} houses); each group stays on one side of every split. "
             f"{counts['shared_photos']} photo pair(s) shared between houses, {counts['duplicate_records']} "
             f"duplicate record(s) ({counts['dropped']} copies left out), {counts['same_photo_two_rooms']} photo(s) "
             f"used for two rooms of one house. Near-identical: pHash within {NEAR_IDENTICAL_BITS} of 64 bits.", ""]
    if summary["groups"]:
        lines += ["| group | houses | why |", "|---|---|---|"]
        lines += [f"| {g['houses'][0]} | {', '.join(map(str, g['houses']))} | {'; '.join(g['why'])} |"
                  for g in summary["groups"]]
    if found.same_photo_two_rooms:
        lines += ["", "## One photo for two rooms", ""] + [f"- {line}" for line in warnings(found)]
    if found.dropped:
        lines += ["", f"Left out (`--duplicates keep-one`): houses {', '.join(map(str, found.dropped))}."]
    return "\n".join(lines) + "\n"
