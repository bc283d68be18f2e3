from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.common import tutorial_montage
from tasks.core.errors import DataError
from tasks.core.images import decode_image, jpeg_size, reduction_for
from tasks.houses.ingest import PHOTO_KINDS
from tasks.houses.montage import house_montage
from tests.fixtures import KIND_COLORS, write_photo


def _photos(folder: Path, size=(48, 40)) -> list[Path]:
    paths = []
    for kind in PHOTO_KINDS:
        path = folder / f"1_{kind}.jpg"
        write_photo(path, KIND_COLORS[kind], size)
        paths.append(path)
    return paths


def test_montage_layout_matches_the_tutorials(tmp_path: Path):
    montage = house_montage(_photos(tmp_path), tile_size=32)  # (64, 64, 3) BGR
    assert montage.shape == (64, 64, 3) and montage.dtype == np.uint8
    quadrants = {
        "bathroom": montage[:32, :32], "bedroom": montage[:32, 32:],
        "frontal": montage[32:, 32:], "kitchen": montage[32:, :32],
    }
    for kind, quadrant in quadrants.items():
        assert np.abs(quadrant.reshape(-1, 3).mean(0) - KIND_COLORS[kind]).max() < 3, kind


def test_tile_size_sets_the_montage_size(tmp_path: Path):
    assert house_montage(_photos(tmp_path), tile_size=16).shape == (32, 32, 3)


def test_jpeg_size_reads_the_header(tmp_path: Path):
    path = tmp_path / "a.jpg"
    write_photo(path, (1, 2, 3), size=(123, 457))
    assert jpeg_size(path.read_bytes()) == (123, 457)
    assert jpeg_size(b"\x89PNG....") is None


@pytest.mark.parametrize("size, factor", [((1024, 768), 8), ((200, 300), 4), ((100, 90), 2), ((40, 60), 1), (None, 1)])
def test_reduction_keeps_both_sides_at_least_a_tile(size, factor):
    assert reduction_for(size, 32) == factor


def test_reduced_decoding_matches_a_full_decode_within_interpolation(tmp_path: Path):
    rng = np.random.default_rng(0)
    smooth = cv2.GaussianBlur(rng.integers(0, 255, (600, 800, 3)).astype(np.uint8), (0, 0), 12)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), smooth)
    data = path.read_bytes()
    reduced = cv2.resize(decode_image(data, path, 32), (32, 32), interpolation=cv2.INTER_AREA)
    full = cv2.resize(cv2.imread(str(path)), (32, 32), interpolation=cv2.INTER_AREA)
    assert np.abs(reduced.astype(int) - full).mean() < 2.0


def test_truncated_photo_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "cut.jpg"
    write_photo(path, (9, 9, 9), size=(200, 200), noise=50)
    path.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(DataError, match="cut.jpg: cannot decode this image"):
        decode_image(path.read_bytes(), path, 32)


def test_tutorial_reference_has_the_same_layout(tmp_path: Path):
    paths = _photos(tmp_path)
    assert np.abs(tutorial_montage(paths).astype(int) - house_montage(paths, 32)).mean() < 2


def test_shard_batches_hand_each_worker_its_shards_whole_with_their_keys_in_plan_order():
    """A batch travels as one table (not a table per shard) and is split back on the worker into exactly the
    shards, houses and keys of the plan."""
    import pandas as pd

    from tasks.houses.montages import PHOTO_FILES, SHARD_HOUSES, batch_shards, shard_batches, shard_plan

    numbers = np.random.default_rng(3).permutation(np.arange(1, 9 * SHARD_HOUSES + 40))[:500]  # file order, gaps
    houses = pd.DataFrame({"house": numbers, **{column: [f"{n}_{column[6:]}.jpg" for n in numbers]
                                                for column in PHOTO_FILES[1:]}})
    groups, _ = shard_plan(houses, None)
    keys = [f"key-{i}" for i in range(len(groups))]
    batches = shard_batches(houses, keys, workers=1)
    assert len(groups) == 10 and [len(batch_keys) for _, batch_keys in batches] == [2, 3, 2, 3]
    assert all(isinstance(batch, pd.DataFrame) for batch, _ in batches)
    back = [shard for batch, batch_keys in batches for shard in batch_shards(batch, batch_keys)]
    assert [key for _, key in back] == keys
    for (group, _), planned in zip(back, groups, strict=True):
        pd.testing.assert_frame_equal(group.reset_index(drop=True), planned.reset_index(drop=True))


@pytest.mark.parametrize(("shards", "workers", "sizes"), [
    (782, 2, {30: 24, 31: 2}),  # 50,000 houses: 13 full rounds of two, not 24 batches of 32 and one of 14
    (782, 1, {31: 18, 32: 7}),
    (79, 2, {9: 1, 10: 7}),  # at least four batches a worker
    (3, 2, {1: 3}),  # no empty batch
])
def test_shard_batches_fill_whole_rounds_of_the_workers_evenly(shards, workers, sizes):
    import pandas as pd

    from tasks.houses.montages import PHOTO_FILES, SHARD_HOUSES, shard_batches

    numbers = np.arange(1, shards * SHARD_HOUSES + 1)
    houses = pd.DataFrame({"house": numbers, **{column: "x.jpg" for column in PHOTO_FILES[1:]}})
    batches = shard_batches(houses, [f"key-{i}" for i in range(shards)], workers)
    counted = pd.Series([len(keys) for _, keys in batches]).value_counts().to_dict()
    assert counted == sizes and (len(batches) % workers == 0 or len(batches) == shards)
