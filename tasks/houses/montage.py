"""The 2x2 montage the CNN sees: a house's four photos, each shrunk to a tile.

Layout (the tutorials'), photos in PHOTO_KINDS order, each resized to tile x tile:
    +----------+----------+
    | bathroom | bedroom  |
    +----------+----------+
    | kitchen  | frontal  |
    +----------+----------+
Pixels are BGR uint8. Photos are decoded at a reduced JPEG scale (never below the tile) and shrunk
with area interpolation, which averages instead of aliasing.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tasks.core.images import image_from
from tasks.core.read_ahead import Content, read_file

# (row, column) of each photo kind's tile, in PHOTO_KINDS order.
TILE_POSITIONS = ((0, 0), (0, 1), (1, 1), (1, 0))
BAD_PHOTO_HINT = "replace the file, or pass --on-bad-house skip to leave the house out"


def resize_tile(image: np.ndarray, tile_size: int) -> np.ndarray:
    """(H, W, 3) -> (tile, tile, 3)."""
    return cv2.resize(image, (tile_size, tile_size), interpolation=cv2.INTER_AREA)


def tile_montage(tiles: list[np.ndarray], tile_size: int) -> np.ndarray:
    """Four (tile, tile, 3) photos in PHOTO_KINDS order -> one (2*tile, 2*tile, 3) montage."""
    montage = np.zeros((2 * tile_size, 2 * tile_size, 3), dtype=np.uint8)
    for tile, (row, col) in zip(tiles, TILE_POSITIONS, strict=True):
        montage[row * tile_size:(row + 1) * tile_size, col * tile_size:(col + 1) * tile_size] = tile
    return montage


def house_montage(photo_paths: list[Path], tile_size: int) -> np.ndarray:
    """Read a house's four photos (PHOTO_KINDS order) and tile them. (2*tile, 2*tile, 3) uint8."""
    return montage_from_bytes([(read_file(path), path) for path in photo_paths], tile_size)


def montage_from_bytes(photos: list[tuple[Content, Path | str]], tile_size: int) -> np.ndarray:
    """A house's four photos as (their bytes as read_file gave them, name for errors) in PHOTO_KINDS order, tiled."""
    tiles = [resize_tile(image_from(data, name, tile_size, BAD_PHOTO_HINT), tile_size) for data, name in photos]
    return tile_montage(tiles, tile_size)


def montage_tiles(montages: np.ndarray) -> np.ndarray:
    """(N, 2t, 2t, C) montages -> (N, 4, t, t, C): each house's photos back in PHOTO_KINDS order."""
    side = montages.shape[1] // 2
    tiles = [montages[:, r * side:(r + 1) * side, c * side:(c + 1) * side] for r, c in TILE_POSITIONS]
    return np.stack(tiles, axis=1)
