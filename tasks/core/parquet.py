"""Parquet with page checksums: every page written carries a CRC, and every read verifies it, so a
file damaged in place fails loudly instead of feeding wrong numbers to a model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_table(table: pa.Table, path: Path, **options) -> None:
    pq.write_table(table, path, write_page_checksum=True, **options)


def writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(path, schema, write_page_checksum=True)


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns, page_checksum_verification=True)


def open_file(path: Path) -> pq.ParquetFile:
    return pq.ParquetFile(path, page_checksum_verification=True)


def fixed_width_rows(column: pa.Array | pa.ChunkedArray, width: int) -> np.ndarray | None:
    """(N, width) uint8 of a binary or string column whose every row holds `width` bytes, straight from its Arrow
    buffers (no Python object a row); None when a row is null or of another length."""
    large = pa.types.is_large_binary(column.type) or pa.types.is_large_string(column.type)
    rows = []
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        if not len(chunk):
            continue
        offsets = np.frombuffer(chunk.buffers()[1], np.int64 if large else np.int32)
        offsets = offsets[chunk.offset:chunk.offset + len(chunk) + 1]
        if chunk.null_count or np.any(np.diff(offsets) != width):
            return None
        rows.append(np.frombuffer(chunk.buffers()[2], np.uint8)[offsets[0]:offsets[-1]].reshape(-1, width))
    return np.concatenate(rows) if rows else np.empty((0, width), np.uint8)
