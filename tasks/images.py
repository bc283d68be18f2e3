"""Photo decoding and the 2x2 montage the CNN sees.

Montage layout (the tutorials'), photos in PHOTO_KINDS order, each resized to tile x tile:
    +----------+----------+
    | bathroom | bedroom  |
    +----------+----------+
    | kitchen  | frontal  |
    +----------+----------+
Pixels are BGR uint8, as `cv2.imread` gives them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from tasks.errors import DataError

# (row, column) of each photo kind's tile, in PHOTO_KINDS order.
TILE_POSITIONS = ((0, 0), (0, 1), (1, 1), (1, 0))
_REDUCED_FLAGS = {8: cv2.IMREAD_REDUCED_COLOR_8, 4: cv2.IMREAD_REDUCED_COLOR_4, 2: cv2.IMREAD_REDUCED_COLOR_2}
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's frame header, without decoding; None if not found."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return height, width
        i += 2 + length
    return None


def reduction_for(size: tuple[int, int] | None, tile_size: int) -> int:
    """The largest JPEG DCT scaling (1/8, 1/4, 1/2) that still leaves both sides >= tile_size."""
    if size is None:
        return 1
    shortest = min(size)
    for factor in (8, 4, 2):
        if shortest // factor >= tile_size:
            return factor
    return 1


def decode_photo(data: bytes, path: Path, tile_size: int) -> np.ndarray:
    """Decode at the smallest JPEG scale that still covers a tile; raise DataError if undecodable."""
    factor = reduction_for(jpeg_size(data), tile_size)
    flag = _REDUCED_FLAGS.get(factor, cv2.IMREAD_COLOR)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag) if data else None
    if image is None:
        raise DataError("photo cannot be decoded (truncated or not an image); replace the file", path)
    return image


def resize_tile(image: np.ndarray, tile_size: int) -> np.ndarray:
    """(H, W, 3) -> (tile, tile, 3). INTER_AREA averages, so shrinking does not alias."""
    return cv2.resize(image, (tile_size, tile_size), interpolation=cv2.INTER_AREA)


def tile_montage(tiles: list[np.ndarray], tile_size: int) -> np.ndarray:
    """Four (tile, tile, 3) photos in PHOTO_KINDS order -> one (2*tile, 2*tile, 3) montage."""
    montage = np.zeros((2 * tile_size, 2 * tile_size, 3), dtype=np.uint8)
    for tile, (row, col) in zip(tiles, TILE_POSITIONS, strict=True):
        montage[row * tile_size:(row + 1) * tile_size, col * tile_size:(col + 1) * tile_size] = tile
    return montage


def house_montage(photo_paths: list[Path], tile_size: int) -> np.ndarray:
    """Read a house's four photos (PHOTO_KINDS order) and tile them. (2*tile, 2*tile, 3) uint8."""
    tiles = []
    for path in photo_paths:
        data = Path(path).read_bytes()
        tiles.append(resize_tile(decode_photo(data, path, tile_size), tile_size))
    return tile_montage(tiles, tile_size)


def tutorial_montage(photo_paths: list[Path], tile_size: int = 32) -> np.ndarray:
    """The tutorials' plain way (full decode, default cv2.resize), kept as the reference."""
    tiles = [cv2.resize(cv2.imread(str(p)), (tile_size, tile_size)) for p in photo_paths]
    return tile_montage(tiles, tile_size)
