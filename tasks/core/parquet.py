"""Parquet with page checksums: every page written carries a CRC, and every read verifies it, so a
file damaged in place fails loudly instead of feeding wrong numbers to a model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Arrow's default allocator (mimalloc) keeps the pages it freed: reading a 50,000-house table left 59 MiB more
# in the process than before it, 32 MiB with the system allocator, which gives them back. Every process of the
# pipeline reads and writes tables of all the houses, so it uses the system one (ARROW_DEFAULT_MEMORY_POOL
# chooses another).
if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
    pa.set_memory_pool(pa.system_memory_pool())


def release_unused_memory() -> None:
    """Give the memory freed so far back to the system: Arrow's pool, and with the system allocator glibc's
    free pages anywhere in its heaps (malloc_trim), which it would otherwise keep for this process. Called
    between the stages of a flow that hold tables of every house."""
    pa.default_memory_pool().release_unused()


def write_table(table: pa.Table, path: Path, **options) -> None:
    pq.write_table(table, path, write_page_checksum=True, **options)


def writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(path, schema, write_page_checksum=True)


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(path, columns=columns, page_checksum_verification=True)


def open_file(path: Path) -> pq.ParquetFile:
    return pq.ParquetFile(path, page_checksum_verification=True)


def padded_strings(column: pa.Array | pa.ChunkedArray, block: int = 16384) -> np.ndarray:
    """A string column as a numpy `S<longest>` array, straight from its Arrow buffers (no Python object a row),
    `block` rows at a time: compact to send to a cluster's task (a slice of it costs only its own rows). Nulls
    become b""."""
    large = pa.types.is_large_binary(column.type) or pa.types.is_large_string(column.type)
    chunks = [chunk.slice(at, block) for chunk in (column.chunks if isinstance(column, pa.ChunkedArray) else [column])
              for at in range(0, len(chunk), block)]
    width = max([1, *(pc.max(pc.binary_length(chunk)).as_py() or 0 for chunk in chunks)])
    out = np.zeros((sum(len(chunk) for chunk in chunks), width), np.uint8)
    row = 0
    for chunk in chunks:
        offsets = np.frombuffer(chunk.buffers()[1], np.int64 if large else np.int32)
        starts = offsets[chunk.offset:chunk.offset + len(chunk)].astype(np.int64)
        lengths = pc.fill_null(pc.binary_length(chunk), 0).to_numpy().astype(np.int64)
        if lengths.any():
            data = np.frombuffer(chunk.buffers()[2], np.uint8)
            rows = np.repeat(np.arange(row, row + len(chunk), dtype=np.int64), lengths)
            within = np.arange(len(rows), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            out[rows, within] = data[np.repeat(starts, lengths) + within]
        row += len(chunk)
    return out.view(f"S{width}").ravel()


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
