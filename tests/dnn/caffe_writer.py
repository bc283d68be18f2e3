"""A minimal writer of Caffe weights files (binary NetParameter), for tests: layer(100) ->
LayerParameter name(1) + blobs(7) -> BlobProto shape(7){dim(1) packed} + data(5) packed floats."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _blob(array: np.ndarray) -> bytes:
    shape = _field(1, b"".join(_varint(d) for d in array.shape))
    return _field(7, shape) + _field(5, np.ascontiguousarray(array, "<f4").tobytes())


def write_caffemodel(path: Path, layers: dict[str, list[np.ndarray]]) -> Path:
    body = b"".join(_field(100, _field(1, name.encode()) + b"".join(_field(7, _blob(b)) for b in blobs))
                    for name, blobs in layers.items())
    path.write_bytes(body)
    return path
