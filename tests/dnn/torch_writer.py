"""A minimal writer of Torch7 binary files (`torch.save` format, as OpenCV's Torch importer reads
them), for tests. Little-endian: int 4 bytes, long 8, number 8 (double), string = int length + bytes.

An object is its Lua type (int) then: nil -> nothing; number -> double; string -> string;
boolean -> int; table -> index, size, key/value pairs; torch object -> index, "V 1", class name,
then the class's own data: a tensor's ndims, sizes, strides, 1-based offset and storage object;
a storage's size and raw values; an nn module's fields as a table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NIL, NUMBER, STRING, TABLE, TORCH, BOOLEAN = 0, 1, 2, 3, 4, 5


@dataclass
class Module:
    """An nn module: its class name (nn.Sequential, ...) and its fields."""

    class_name: str
    fields: dict


class _Writer:
    def __init__(self):
        self.parts: list[bytes] = []
        self.next_index = 0

    def int(self, value: int):
        self.parts.append(struct.pack("<i", value))

    def long(self, value: int):
        self.parts.append(struct.pack("<q", value))

    def string(self, text: str):
        data = text.encode()
        self.int(len(data))
        self.parts.append(data)

    def index(self) -> int:
        self.next_index += 1
        return self.next_index

    def table(self, pairs: dict):
        self.int(TABLE)
        self.int(self.index())
        self.int(len(pairs))
        for key, value in pairs.items():
            self.value(key)
            self.value(value)

    def torch_header(self, class_name: str):
        self.int(TORCH)
        self.int(self.index())
        self.string("V 1")
        self.string(class_name)

    def tensor(self, array: np.ndarray):
        array = np.ascontiguousarray(array, "<f4")
        self.torch_header("torch.FloatTensor")
        self.int(array.ndim)
        for size in array.shape:
            self.long(size)
        for stride in array.strides:
            self.long(stride // array.itemsize)
        self.long(1)  # storage offset, 1-based
        self.torch_header("torch.FloatStorage")
        self.long(array.size)
        self.parts.append(array.tobytes())

    def value(self, value):
        if value is None:
            self.int(NIL)
        elif isinstance(value, bool):
            self.int(BOOLEAN)
            self.int(int(value))
        elif isinstance(value, (int, float)):
            self.int(NUMBER)
            self.parts.append(struct.pack("<d", float(value)))
        elif isinstance(value, str):
            self.int(STRING)
            self.string(value)
        elif isinstance(value, np.ndarray):
            self.tensor(value)
        elif isinstance(value, Module):
            self.torch_header(value.class_name)
            self.table(value.fields)
        elif isinstance(value, list):  # a Lua array: keys 1..n
            self.table({i: item for i, item in enumerate(value, start=1)})
        elif isinstance(value, dict):
            self.table(value)
        else:
            raise TypeError(f"cannot write {type(value).__name__} to a Torch7 file")


def spatial_convolution(weight: np.ndarray, bias: np.ndarray, pad: int = 0) -> Module:
    """nn.SpatialConvolution with weight (out, in, kH, kW), stride 1."""
    out_planes, in_planes, kernel_h, kernel_w = weight.shape
    return Module("nn.SpatialConvolution", {
        "nInputPlane": in_planes, "nOutputPlane": out_planes, "kW": kernel_w, "kH": kernel_h, "dW": 1, "dH": 1,
        "padW": pad, "padH": pad, "weight": weight, "bias": bias, "train": False})


def write_t7(path: Path, module: Module) -> Path:
    writer = _Writer()
    writer.value(module)
    path.write_bytes(b"".join(writer.parts))
    return path
