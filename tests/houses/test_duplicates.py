"""Duplicate houses (tasks.houses.duplicates) are found and kept on one side of every split: train/test, the
validation share, the CV (and interval calibration) folds and the AutoML search's validation."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from tasks.automl.data import _split_rows
from tasks.core.cache import Cache
from tasks.core.splits import group_kfold_rows, grouped_holdout_rows
from tasks.houses.duplicates import dedupe, warnings
from tasks.houses.encoders import split_houses
from tasks.houses.ingest import PHOTO_KINDS, ingest_houses
from tests.fixtures import make_houses, write_photo


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    """24 generated houses with distinct photos; house 17 shows house 5's frontal photo (a byte-identical copy),
    house 20 is house 8's record again, and house 3's kitchen photo is its bedroom photo."""
    folder = make_houses(tmp_path_factory.mktemp("dups") / "houses", [90000 + n % 3 for n in range(24)])
    for number in range(1, 25):  # distinct random photos: flat generated ones would all look alike to a pHash
        for k, kind in enumerate(PHOTO_KINDS):
            write_photo(folder / f"{number}_{kind}.jpg", (40 * k, 90, 200 - 40 * k), noise=120, seed=100 * number + k)
    shutil.copyfile(folder / "5_frontal.jpg", folder / "17_frontal.jpg")
    shutil.copyfile(folder / "3_bedroom.jpg", folder / "3_kitchen.jpg")
    lines = (folder / "HousesInfo.txt").read_text().splitlines()
    lines[19] = lines[7]  # house 20 = house 8's record
    (folder / "HousesInfo.txt").write_text("\n".join(lines) + "\n")
    houses = ingest_houses(folder).houses
    return (*dedupe(Cache(tmp_path_factory.mktemp("cache")), folder, houses, "keep-all"),
            dedupe(Cache(tmp_path_factory.mktemp("cache2")), folder, houses, "keep-one")[0])


def test_shared_photos_and_repeated_records_are_found_and_only_they(found):
    kept, duplicates, kept_one = found
    assert duplicates.groups() == [[5, 17], [8, 20]]
    assert set(kept["house"]) == set(range(1, 25))  # keep-all
    assert 20 not in set(kept_one["house"]) and 8 in set(kept_one["house"])  # keep-one drops the later copy
    lines = warnings(duplicates)
    assert len(lines) == 1 and "house 3" in lines[0] and "3_bedroom.jpg" in lines[0] and "3_kitchen.jpg" in lines[0]


def _sides_hold_groups_whole(groups: np.ndarray, parts: list[np.ndarray]) -> bool:
    return all(len({i for i, part in enumerate(parts) if g in set(groups[part])}) == 1 for g in set(groups))


@pytest.mark.parametrize("seed", range(12))
def test_a_duplicate_lands_on_one_side_of_every_split(found, seed):
    kept, _, _ = found
    train, test = split_houses(kept, 0.25, seed)
    for pair in ([5, 17], [8, 20]):
        assert set(pair) <= set(train["house"]) or set(pair) <= set(test["house"]), (seed, pair)
    groups = train["group"].to_numpy()
    fit, val = grouped_holdout_rows(len(train), 0.2, seed, groups)  # the validation share of a training
    assert _sides_hold_groups_whole(groups, [fit, val])
    folds = group_kfold_rows(len(train), 4, seed, groups)  # CV and the interval's calibration folds
    assert _sides_hold_groups_whole(groups, [held for _, held in folds])
    assert sorted(np.concatenate([held for _, held in folds]).tolist()) == list(range(len(train)))
    fit, val = _split_rows(len(train), 0.3, seed, groups)  # the AutoML search's validation
    assert _sides_hold_groups_whole(groups, [fit, val])


def test_many_random_groups_stay_whole_in_every_split():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 40, 120)  # 120 rows in at most 40 groups: most groups have several rows
    for seed in range(5):
        assert _sides_hold_groups_whole(groups, list(grouped_holdout_rows(120, 0.25, seed, groups)))
        assert _sides_hold_groups_whole(groups, [held for _, held in group_kfold_rows(120, 5, seed, groups)])


def test_near_pairs_index_finds_exactly_the_pairs_all_pairs_comparison_finds():
    """The pigeonhole index (tasks.houses.duplicates.near_pairs) against comparing every pair: 1,500
    hashes around 200 centres, each 0-9 bits from its centre (50 of them twice): pairs on both sides of 6 bits."""
    from tasks.houses.duplicates import near_pairs

    rng = np.random.default_rng(3)
    centres = rng.integers(0, 2**63, 200, dtype=np.int64).astype(np.uint64)
    values = centres[rng.integers(0, 200, 1500)]
    for _ in range(9):
        flip = rng.random(len(values)) < 0.5
        values[flip] ^= np.uint64(1) << rng.integers(0, 64, int(flip.sum())).astype(np.uint64)
    values[-50:] = values[:50]  # identical photos too
    distance = np.bitwise_count(values[:, None] ^ values[None, :])
    expected = [(i, j, int(distance[i, j])) for i, j in zip(*np.nonzero(np.triu(distance <= 6, k=1)))]
    found = near_pairs(values, 6)
    assert [tuple(row) for row in found.tolist()] == expected
    assert len(expected) > 1000 and {d for *_, d in expected} == set(range(7))  # every distance up to the limit


def test_photo_hashes_are_read_back_in_order_and_a_photo_without_one_is_named(tmp_path):
    """The cached hashes (tasks.houses.duplicates.PhotoHashes: sha256 as 32 raw bytes, pHash as uint64): read
    back equal from their Parquet file, looked up by sha256 in any order (digests that end in zero bytes too);
    a sha256 missing is a KeyError with its hex digest; a file whose rows are out of order is refused; the
    table's digest columns are decoded without a Python string each, and a column that holds something else
    is refused by name."""
    import hashlib

    import pandas as pd
    import pyarrow.parquet as pq

    from tasks.houses.duplicates import PhotoHashes, hex_digest, photo_shas

    hexes = sorted([hashlib.sha256(str(n).encode()).hexdigest() for n in range(298)] + ["00" * 32, "ab" * 31 + "00"])
    table = pd.DataFrame({f"sha_{kind}": hexes[k::4] for k, kind in enumerate(PHOTO_KINDS)})  # 75 houses
    shas = photo_shas(table)
    assert [hex_digest(sha) for sha in shas] == [table.iat[i // 4, i % 4] for i in range(300)]
    order = np.argsort(shas)
    hashes = PhotoHashes(shas[order], np.arange(300, dtype=np.uint64)[order] * np.uint64(2**54))
    hashes.write(tmp_path / "h.parquet")
    back = PhotoHashes.read(tmp_path / "h.parquet")
    assert np.array_equal(back.sha, hashes.sha) and np.array_equal(back.phash, hashes.phash)
    assert np.array_equal(back.of(shas), np.arange(300, dtype=np.uint64) * np.uint64(2**54))
    stranger = hashlib.sha256(b"not a photo").hexdigest()
    with pytest.raises(KeyError, match=stranger):
        back.of(photo_shas(pd.DataFrame({f"sha_{kind}": [hexes[5] if kind != "kitchen" else stranger]
                                         for kind in PHOTO_KINDS})))
    pq.write_table(pq.read_table(tmp_path / "h.parquet").take(np.random.default_rng(0).permutation(300)),
                   tmp_path / "shuffled.parquet")
    with pytest.raises(ValueError, match="not in sha256 order"):
        PhotoHashes.read(tmp_path / "shuffled.parquet")
    table.loc[7, "sha_frontal"] = "g" * 64
    with pytest.raises(ValueError, match="column sha_frontal: not a sha256 hex digest"):
        photo_shas(table)
