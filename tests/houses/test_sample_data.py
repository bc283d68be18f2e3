"""The sample that ships with the package: copied out whole, never over an existing folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.core.errors import DataError
from tasks.houses.ingest import ingest_houses
from tasks.houses.sample_data import sample_folder, write_sample
from tests.conftest import ROOT


def test_the_sample_is_the_checkouts_data_and_copies_out_whole(tmp_path: Path):
    assert sample_folder().resolve() == (ROOT / "data" / "houses").resolve()  # a link in a checkout
    target = tmp_path / "houses"
    count = write_sample(target)
    source = sorted(p.name for p in (ROOT / "data" / "houses").iterdir())
    assert count == len(source) == 2142 and sorted(p.name for p in target.iterdir()) == source
    assert (target / "HousesInfo.txt").read_bytes() == (ROOT / "data" / "houses" / "HousesInfo.txt").read_bytes()
    assert len(ingest_houses(target, "fail").houses) == 535
    assert [p.name for p in tmp_path.iterdir()] == ["houses"]  # no temporary folder left


def test_the_sample_is_not_written_over_a_folder_in_use(tmp_path: Path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(DataError, match="already exists and is not an empty folder"):
        write_sample(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_sample(empty) == 2142
