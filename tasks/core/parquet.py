"""Parquet with page checksums: every page written carries a CRC, and every read verifies it, so a
file damaged in place fails loudly instead of feeding wrong numbers to a model."""

from __future__ import annotations

from pathlib import Path

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
