"""Cache behaviour of the stages, called as plain functions (the flow wires the same calls)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tasks.core.errors import DataErrors
from tasks.houses.montages import SHARD_HOUSES, iter_montages
from tests.fixtures import make_houses, run_stages, write_photo


def _bytes(dataset) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(dataset.folder.iterdir())}


@pytest.fixture
def many_houses(tmp_path: Path) -> Path:
    """150 houses in three montage shards, five zip codes."""
    return make_houses(tmp_path / "many", [90000 + n % 5 for n in range(150)], photo_size=(24, 20))


def test_rerun_with_nothing_changed_computes_nothing(many_houses: Path, tmp_path: Path):
    montages, dataset = run_stages(many_houses, tmp_path / "cache")
    assert (montages.computed, montages.reused, dataset.computed) == (3, 0, True)
    before = _bytes(dataset)
    again_montages, again = run_stages(many_houses, tmp_path / "cache")
    assert (again_montages.computed, again_montages.reused, again.computed) == (0, 3, False)
    assert _bytes(again) == before


def test_changed_photo_rebuilds_only_its_shard_and_what_follows(many_houses: Path, tmp_path: Path):
    _, first = run_stages(many_houses, tmp_path / "cache")
    write_photo(many_houses / "70_kitchen.jpg", (10, 200, 10), (24, 20))  # house 70: second shard
    montages, dataset = run_stages(many_houses, tmp_path / "cache")
    assert (montages.computed, montages.reused, dataset.computed) == (1, 2, True)
    assert 70 > SHARD_HOUSES
    assert dataset.folder != first.folder
    montage = dict(iter_montages(montages.shards, 16))[70]
    assert np.abs(montage[16:, :16].reshape(-1, 3).mean(0) - (10, 200, 10)).max() < 3  # kitchen tile


def test_changed_attribute_line_reuses_montages_and_rebuilds_the_dataset(many_houses: Path, tmp_path: Path):
    run_stages(many_houses, tmp_path / "cache")
    lines = (many_houses / "HousesInfo.txt").read_text().splitlines()
    lines[9] = "3 2 2222 90004 444444"
    (many_houses / "HousesInfo.txt").write_text("\n".join(lines) + "\n")
    montages, dataset = run_stages(many_houses, tmp_path / "cache")
    assert (montages.computed, dataset.computed) == (0, True)
    table = pd.concat([pq.read_table(p).to_pandas() for p in (dataset.train_path, dataset.test_path)])
    assert table.set_index("house").loc[10, "price"] == 444444


def test_parameter_change_redoes_what_depends_on_it(many_houses: Path, tmp_path: Path):
    run_stages(many_houses, tmp_path / "cache")
    montages, dataset = run_stages(many_houses, tmp_path / "cache", test_size=0.3)
    assert (montages.computed, dataset.computed) == (0, True)
    montages, dataset = run_stages(many_houses, tmp_path / "cache", tile_size=8)
    assert (montages.computed, dataset.computed) == (3, True)
    assert len(pq.read_table(dataset.train_path)["montage"][0].as_py()) == 16 * 16 * 3


def test_deleted_cache_file_comes_back_identical(many_houses: Path, tmp_path: Path):
    montages, dataset = run_stages(many_houses, tmp_path / "cache")
    before = _bytes(dataset)
    shard_before = montages.shards[1].read_bytes()
    dataset.train_path.unlink()
    montages.shards[1].unlink()
    again_montages, again = run_stages(many_houses, tmp_path / "cache")
    assert (again_montages.computed, again.computed) == (1, True)
    assert again_montages.shards[1].read_bytes() == shard_before
    assert _bytes(again) == before


def test_dataset_files_hold_features_targets_and_montages(houses: Path, tmp_path: Path):
    montages, dataset = run_stages(houses, tmp_path / "cache")
    assert (dataset.n_train, dataset.n_test) == (6, 3)  # 9 houses in zips with >= 3 houses
    train = pq.read_table(dataset.train_path)
    assert train.column_names == ["house", "bedrooms", "bathrooms", "area", "zipcode", "price",
                                  "features", "target", "montage", "group"]
    row = train.slice(0, 1).to_pylist()[0]
    assert row["group"] == row["house"]  # no duplicates here: each house is its own group
    assert len(row["features"]) == 2 + 3
    assert row["target"] == pytest.approx(row["price"] / max(train["price"].to_pylist()), rel=1e-6)
    assert len(row["montage"]) == 32 * 32 * 3


def test_undecodable_photo_fails_or_is_skipped(houses: Path, tmp_path: Path):
    photo = houses / "3_frontal.jpg"
    photo.write_bytes(photo.read_bytes()[:200])  # a JPEG header, then nothing
    with pytest.raises(DataErrors, match="3_frontal.jpg: cannot decode this image"):
        run_stages(houses, tmp_path / "cache")
    montages, dataset = run_stages(houses, tmp_path / "cache", on_bad_house="skip")
    assert [item["house"] for item in montages.failed] == [3]
    assert dataset.n_train + dataset.n_test == 8
    with pytest.raises(DataErrors, match="3_frontal.jpg"):  # a cached skip does not hide it later
        run_stages(houses, tmp_path / "cache")
