"""Montages read back from a split's Arrow buffers (tasks.houses.arrays): the same arrays as the bytes written,
chunk by chunk and whole, and a row of the wrong size refused with a line that says what is wrong."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tasks.houses.arrays import iter_split, read_split


def _split(path, montages: list[bytes]) -> None:
    pq.write_table(pa.table({"montage": pa.array(montages, pa.binary()), "price": np.arange(len(montages)) * 1.0}),
                   path, row_group_size=7)


def test_montages_come_back_as_written_whole_in_chunks_and_by_row(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 4, 4, 3), dtype=np.uint8)
    _split(tmp_path / "train.parquet", [image.tobytes() for image in images])
    expected = images.astype(np.float32) / 255.0
    assert np.array_equal(read_split(tmp_path / "train.parquet", ("montage",))["montage"], expected)
    chunks = list(iter_split(tmp_path / "train.parquet", ("montage", "price"), chunk_rows=4))
    assert np.array_equal(np.concatenate([c["montage"] for c in chunks]), expected)
    rows = np.array([3, 8, 9, 29])
    assert np.array_equal(read_split(tmp_path / "train.parquet", ("montage",), rows)["montage"], expected[rows])
    picked = np.concatenate([c["montage"] for c in iter_split(tmp_path / "train.parquet", ("montage",), 4, rows)])
    assert np.array_equal(picked, expected[rows])


def test_a_montage_of_another_size_is_refused(tmp_path):
    montages = [bytes(48)] * 5 + [bytes(47)]
    _split(tmp_path / "train.parquet", montages)
    with pytest.raises(ValueError, match="a montage that is not 48 bytes"):
        read_split(tmp_path / "train.parquet", ("montage",))


def test_strings_become_padded_bytes_from_their_arrow_buffers_in_blocks():
    from tasks.core.parquet import padded_strings

    names = ["12_bathroom.jpg", None, "", "7_kitchen.png", "x" * 40, "é_frontal.jpg"]
    column = pa.chunked_array([pa.array(names[:3]), pa.array(["skip", *names[3:]]).slice(1), pa.array([], pa.string())])
    expected = [(name or "").encode() for name in names]
    for block in (1, 2, 1000):  # a block boundary inside a chunk, at every row, none
        out = padded_strings(column, block)
        assert out.dtype == np.dtype("S40") and out.tolist() == expected
    assert padded_strings(pa.array(["aa", "bbb", "c"]).slice(1, 2)).tolist() == [b"bbb", b"c"]
    assert len(padded_strings(pa.array([], pa.string()))) == 0
