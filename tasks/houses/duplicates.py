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

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from tasks.core import parquet
from tasks.core.cache import Cache
from tasks.core.hashing import code_version, digest
from tasks.core.images import image_from
from tasks.core.read_ahead import Content, map_read_ahead
from tasks.houses.ingest import ATTRIBUTE_COLUMNS, PHOTO_KINDS, DuplicatePolicy, photo_names

STAGE = "photo-hashes"
NEAR_IDENTICAL_BITS = 6  # of 64: real-data copies are 0-2 bits apart, distinct photos >= 10
HASH_SIDE = 64  # photos are decoded at a reduced JPEG scale, never below this side, before hashing
LISTED = 50  # photo pairs listed in the report (and reasons per group): all are counted and used


def perceptual_hash(path: Path, content: Content) -> int:
    """The photo's 64-bit pHash (imagehash.phash of the grey image) as an unsigned integer, from its bytes as
    read_file gave them (`path` names it in errors)."""
    import imagehash
    from PIL import Image

    image = image_from(content, path, HASH_SIDE)  # (H, W, 3) BGR
    return int(str(imagehash.phash(Image.fromarray(np.ascontiguousarray(image[:, :, ::-1])).convert("L"))), 16)


def perceptual_hashes(data_dir: Path, names: np.ndarray, workers: int = 2) -> np.ndarray:
    """(N,) uint64 pHashes of the photos `names` ((N,) S file names under `data_dir`), in their order, decoded on
    `workers` threads (OpenCV decodes without the GIL) while the next photos are read."""
    paths = [Path(data_dir) / name.decode() for name in names]
    hashes = map_read_ahead(lambda path, contents: perceptual_hash(path, contents[0]), paths, lambda path: [path],
                            workers)
    return np.fromiter(hashes, np.uint64, len(names))


_NIBBLE = np.full(256, 255, np.uint8)  # an ASCII hex digit's value; 255: not a hex digit
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16)
_NIBBLE[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


def _digest_rows(column: pd.Series) -> np.ndarray:
    """(N, 32) uint8 of a column of sha256 hex digests, decoded from its Arrow buffers (no Python string each)."""
    text = parquet.fixed_width_rows(pa.array(column, pa.large_string()), 64)
    nibbles = None if text is None else _NIBBLE[text]
    if nibbles is None or np.any(nibbles == 255):
        raise ValueError(f"column {column.name}: not a sha256 hex digest on every row")
    return (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]


def photo_shas(houses: pd.DataFrame) -> np.ndarray:
    """(4 N,) S32: the sha256 of every photo as 32 raw bytes, house by house and kind by kind (a fixed-width array,
    not 4 N Python strings)."""
    rows = np.stack([_digest_rows(houses[f"sha_{kind}"]) for kind in PHOTO_KINDS], axis=1)
    return np.ascontiguousarray(rows).reshape(-1, 32).view("S32").ravel()


def hex_digest(sha: np.ndarray) -> str:
    """The hex digest of one S32 element (bytes(element) would drop its trailing zero bytes)."""
    return np.asarray(sha, "S32").reshape(1).view(np.uint8).tobytes().hex()


@dataclass(frozen=True)
class PhotoHashes:
    """The pHash of every distinct photo: `sha` (N,) S32 sorted, `phash` (N,) uint64 beside it. Arrays, not a
    dict of strings: 40 bytes a photo in the flow's process, however many photos there are."""

    sha: np.ndarray
    phash: np.ndarray

    def of(self, shas: np.ndarray) -> np.ndarray:
        """(M,) uint64 pHashes of the photos with sha256 `shas` ((M,) S32); KeyError names one that has none."""
        at = np.minimum(np.searchsorted(self.sha, shas), max(len(self.sha) - 1, 0))
        missing = (self.sha[at] != shas) if len(self.sha) else np.ones(len(shas), bool)
        if missing.any():
            raise KeyError(f"no perceptual hash for the photo with sha256 {hex_digest(shas[missing][0])}")
        return self.phash[at]

    def write(self, path: Path) -> None:
        count = len(self.sha)
        shas = pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), count, [None, pa.py_buffer(self.sha.tobytes())])
        parquet.write_table(pa.table({"sha256": shas, "phash": pa.array(self.phash, pa.uint64())}), path)

    @classmethod
    def read(cls, path: Path) -> PhotoHashes:
        table = parquet.read_table(path)
        column = table.column("sha256").combine_chunks()
        shas = np.frombuffer(column.buffers()[1], "S32", len(column), column.offset * 32).copy()
        if column.null_count or np.any(shas[1:] <= shas[:-1]):
            raise ValueError(f"{path}: photo hashes not in sha256 order")
        return cls(shas, table.column("phash").to_numpy())


def _photo_files(houses: pd.DataFrame, photos: np.ndarray) -> np.ndarray:
    """The file names ((N,) S) of the photos at positions `photos` of the photo order (house by house, kind by
    kind: the order near_pairs' indices follow)."""
    return photo_names(houses).ravel()[photos]


def cached_hashes(cache: Cache, data_dir: Path, houses: pd.DataFrame,
                  compute: Callable[[np.ndarray], np.ndarray] | None = None) -> PhotoHashes:
    """The pHash of every photo of `houses`, from the cache entry of these photos' contents (a re-run with the
    same photos hashes nothing). `compute` (file names: their (N,) uint64 pHashes) does the hashing when the
    entry is missing: by default here on two threads, on a cluster's workers when given. `houses` needs only its
    photo_<kind> and sha_<kind> columns."""
    shas, first = np.unique(photo_shas(houses), return_index=True)
    key = digest(STAGE, code_version(sys.modules[__name__]), hashlib.sha256(shas.tobytes()).hexdigest())
    folder = cache.lookup(STAGE, key)
    if folder is None:
        names = _photo_files(houses, first)  # one file of each distinct photo
        hashes = PhotoHashes(shas, compute(names) if compute else perceptual_hashes(data_dir, names))
        with cache.write(STAGE, key) as tmp:
            hashes.write(tmp / "hashes.parquet")
        folder = cache.entry_path(STAGE, key)
    return PhotoHashes.read(folder / "hashes.parquet")


def hash_batches(names: np.ndarray, workers: int, most: int = 5000) -> list[np.ndarray]:
    """The photos to hash in batches for a cluster: four per worker, at most `most` photos each (each task costs
    the flow's process about 0.2 MB of bookkeeping until the run ends)."""
    size = max(1, min(most, -(-len(names) // (4 * workers))))
    return [names[i:i + size] for i in range(0, len(names), size)]


@dataclass
class Duplicates:
    """What was found, and the group of every house (its lowest house number; a house alone is its own)."""

    group_of: dict[int, int]  # every house read, the dropped copies too
    shared_photos: list[dict] = field(default_factory=list)  # {houses, files, how}: across houses
    same_photo_two_rooms: list[dict] = field(default_factory=list)  # {house, files, how}: within a house
    same_records: list[list[int]] = field(default_factory=list)  # houses with the same attributes and price
    dropped: list[int] = field(default_factory=list)  # keep-one: later copies of a record, left out
    counts: dict[str, int] = field(default_factory=dict)  # photo pairs found, of which the lists hold LISTED

    def groups(self) -> list[list[int]]:
        """The groups of more than one kept house, by their first house."""
        members: dict[int, list[int]] = {}
        dropped = set(self.dropped)
        for house, group in sorted(self.group_of.items()):
            if house not in dropped:
                members.setdefault(group, []).append(house)
        return [houses for _, houses in sorted(members.items()) if len(houses) > 1]

    def summary(self) -> dict:
        """Counts and lists for summary.json (the data report)."""
        groups = self.groups()
        return {
            "counts": {"groups": len(groups), "houses_in_groups": sum(len(g) for g in groups),
                       "shared_photos": self.counts.get("shared_photos", len(self.shared_photos)),
                       "same_photo_two_rooms": self.counts.get("same_photo_two_rooms", len(self.same_photo_two_rooms)),
                       "duplicate_records": len(self.same_records), "dropped": len(self.dropped)},
            "groups": [{"houses": g, "why": self.why(g)} for g in groups],
            "shared_photos": self.shared_photos,
            "same_photo_two_rooms": self.same_photo_two_rooms,
            "duplicate_records": self.same_records,
            "dropped": self.dropped,
            "near_identical_bits": NEAR_IDENTICAL_BITS,
        }

    def why(self, houses: list[int]) -> list[str]:
        """What links the houses of a group (copies left out included: they can link two kept houses), from the
        listed photo pairs: at most LISTED reasons."""
        group = self.group_of[houses[0]]
        reasons = [f"same record: houses {', '.join(map(str, r))}" for r in self.same_records
                   if self.group_of[r[0]] == group]
        reasons += [f"{item['how']} photo: {' = '.join(item['files'])}" for item in self.shared_photos
                    if self.group_of[item["houses"][0]] == group]
        return reasons[:LISTED]


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


def near_pairs(bits: np.ndarray, max_bits: int) -> np.ndarray:
    """(P, 3) int64 rows (i, j, bits apart) of every pair i < j of (N,) uint64 hashes `bits` at most `max_bits`
    bits apart, sorted.

    A pigeonhole index instead of all pairs (which grows with N^2: about 78 s for 200,000 photos): the 64 bits cut
    into max_bits + 1 chunks; two hashes within max_bits bits agree exactly on at least one chunk, so only
    hashes with an equal chunk are compared. Work and memory grow with the buckets' sizes, not with N^2."""
    chunks = [(np.uint64(p[0]), np.uint64((1 << len(p)) - 1)) for p in np.array_split(np.arange(64), max_bits + 1)]
    found = [np.empty(0, np.int64)]  # pair keys i * N + j, each pair from the first chunk its hashes agree on
    for number, (shift, mask) in enumerate(chunks):
        chunk = (bits >> shift) & mask
        order = np.argsort(chunk, kind="stable")
        ranked = chunk[order]
        active = np.arange(len(order))
        step = 1
        while active.size:  # compare each hash with the one `step` places later while their chunks agree
            active = active[active + step < len(order)]
            active = active[ranked[active] == ranked[active + step]]
            a, b = order[active], order[active + step]
            apart = bits[a] ^ bits[b]
            keep = np.bitwise_count(apart) <= max_bits
            for earlier_shift, earlier_mask in chunks[:number]:
                keep &= ((apart >> earlier_shift) & earlier_mask) != 0
            found.append(np.minimum(a, b)[keep] * len(bits) + np.maximum(a, b)[keep])
            step += 1
    keys = np.sort(np.concatenate(found))
    first, second = keys // max(len(bits), 1), keys % max(len(bits), 1)
    return np.stack([first, second, np.bitwise_count(bits[first] ^ bits[second]).astype(np.int64)], axis=1)


def find_duplicates(houses: pd.DataFrame, hashes: PhotoHashes, policy: DuplicatePolicy = "keep-one",
                    max_bits: int = NEAR_IDENTICAL_BITS) -> Duplicates:
    """Groups of `houses` (house, ATTRIBUTE_COLUMNS, photo_<kind>, sha_<kind>) from shared photos and
    repeated records; `hashes`: the perceptual hash of every photo. Every pair is counted and joins its
    houses; the report lists the first LISTED (generated data can hold millions of pairs)."""
    numbers = houses["house"].to_numpy(np.int64)
    groups = _Groups(numbers.tolist())
    photo_house = np.repeat(numbers, len(PHOTO_KINDS))
    shas = photo_shas(houses)
    pairs = near_pairs(hashes.of(shas), max_bits)
    found = Duplicates({})
    within = photo_house[pairs[:, 0]] == photo_house[pairs[:, 1]]
    kinds = (("same_photo_two_rooms", pairs[within]), ("shared_photos", pairs[~within]))
    shown = np.unique(np.concatenate([rows[:LISTED, :2].ravel() for _, rows in kinds]))  # the photos listed
    file_of = {at: name.decode() for at, name in zip(shown.tolist(), _photo_files(houses, shown))}
    for listed, rows in kinds:
        found.counts[listed] = len(rows)
        for i, j, bits in rows[:LISTED].tolist():
            files = [file_of[i], file_of[j]]
            how = "identical" if shas[i] == shas[j] else f"near-identical ({bits} of 64 bits apart)"
            if listed == "same_photo_two_rooms":
                found.same_photo_two_rooms.append({"house": int(photo_house[i]), "files": files,
                                                   "how": how})
            else:
                found.shared_photos.append({"houses": sorted([int(photo_house[i]), int(photo_house[j])]),
                                            "files": files, "how": how})
    across = pairs[~within]
    for house_a, house_b in np.unique(np.sort(photo_house[across[:, :2]], axis=1), axis=0).tolist():
        groups.join(house_a, house_b)
    columns = list(ATTRIBUTE_COLUMNS)
    repeated = houses.loc[houses.duplicated(columns, keep=False), ["house", *columns]]  # only these: no tuple a house
    for _, same in repeated.groupby(columns, sort=False)["house"]:
        same = sorted(int(h) for h in same)
        found.same_records.append(same)
        for other in same[1:]:
            groups.join(same[0], other)
        if policy == "keep-one":
            found.dropped += same[1:]
    found.same_records.sort()
    found.dropped.sort()
    found.group_of = {h: groups.find(h) for h in numbers.tolist()}
    return found


def dedupe(cache: Cache, data_dir: Path, houses: pd.DataFrame, policy: DuplicatePolicy = "keep-one",
           hashes: PhotoHashes | None = None) -> tuple[pd.DataFrame, Duplicates]:
    """(the houses kept under `policy`, with their `group` column; what was found). `hashes`: the photos'
    perceptual hashes when already computed (on a cluster), else from the cache or computed here."""
    found = find_duplicates(houses, cached_hashes(cache, data_dir, houses) if hashes is None else hashes, policy)
    return apply_policy(houses, found), found


def apply_policy(houses: pd.DataFrame, found: Duplicates) -> pd.DataFrame:
    """The houses less the dropped copies, with their `group` column."""
    kept = houses[~houses["house"].isin(found.dropped)].reset_index(drop=True)
    numbers = kept["house"].to_numpy()
    return kept.assign(group=np.fromiter((found.group_of[h] for h in numbers.tolist()), np.int64, len(numbers)))


def warnings(found: Duplicates) -> list[str]:
    """One line per photo used for two rooms of one house, naming the files (the first LISTED, then a count)."""
    lines = [f"house {item['house']}: one photo for two rooms ({item['how']}): {' and '.join(item['files'])}"
             for item in found.same_photo_two_rooms]
    more = found.counts.get("same_photo_two_rooms", len(lines)) - len(lines)
    return lines + ([f"{more} more photo(s) used for two rooms of one house (not listed)"] if more > 0 else [])


def markdown(found: Duplicates) -> str:
    """The duplicates part of the data report."""
    summary = found.summary()
    counts = summary["counts"]
    lines = ["# Duplicate houses and photos", "",
             f"{counts['groups']} group(s) of houses that share a photo or are the same record "
             f"({counts['houses_in_groups']} houses); each group stays on one side of every split. "
             f"{counts['shared_photos']} photo pair(s) shared between houses, {counts['duplicate_records']} "
             f"duplicate record(s) ({counts['dropped']} copies left out), {counts['same_photo_two_rooms']} photo(s) "
             f"used for two rooms of one house. Near-identical: pHash within {NEAR_IDENTICAL_BITS} of 64 bits. "
             f"The first {LISTED} pairs of each kind are listed.", ""]
    if summary["groups"]:
        lines += ["| group | houses | why |", "|---|---|---|"]
        lines += [f"| {g['houses'][0]} | {', '.join(map(str, g['houses']))} | {'; '.join(g['why'])} |"
                  for g in summary["groups"]]
    if found.same_photo_two_rooms:
        lines += ["", "## One photo for two rooms", ""] + [f"- {line}" for line in warnings(found)]
    if found.dropped:
        lines += ["", f"Left out (`--duplicates keep-one`): houses {', '.join(map(str, found.dropped))}."]
    return "\n".join(lines) + "\n"
