"""Image files: which names count as images, decoding with a clear error (at a reduced JPEG scale
when only a small image is needed), encoding, and folders whose sub-folders name the classes.

Pixels are BGR uint8, as OpenCV gives them.
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from tasks.core.errors import DataError
from tasks.core.read_ahead import Content, read_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
IMAGENET_BGR_MEANS = (103.939, 116.779, 123.680)  # the ImageNet training images' mean, BGR order
_REDUCED_FLAGS = {8: cv2.IMREAD_REDUCED_COLOR_8, 4: cv2.IMREAD_REDUCED_COLOR_4, 2: cv2.IMREAD_REDUCED_COLOR_2}
_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


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


def reduction_for(size: tuple[int, int] | None, min_side: int) -> int:
    """The largest JPEG DCT scaling (1/8, 1/4, 1/2) that still leaves both sides >= min_side."""
    if size is None:
        return 1
    shortest = min(size)
    for factor in (8, 4, 2):
        if shortest // factor >= min_side:
            return factor
    return 1


def decode_image(data: bytes, path: Path | str, min_side: int | None = None,
                 hint: str = "replace or remove it") -> np.ndarray:
    """(H, W, 3) uint8 BGR; a DataError naming the file if it is empty, not an image or corrupt.
    With `min_side`, a JPEG is decoded at the smallest DCT scale that keeps both sides >= min_side."""
    flag = cv2.IMREAD_COLOR
    if min_side is not None:
        flag = _REDUCED_FLAGS.get(reduction_for(jpeg_size(data), min_side), cv2.IMREAD_COLOR)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag) if data else None
    if image is None:
        raise DataError(f"cannot decode this image (empty, truncated, not an image or corrupt); {hint}", path)
    return image


def read_image(path: Path, min_side: int | None = None, hint: str = "replace or remove it") -> np.ndarray:
    """Read and decode an image file; a DataError naming the file if it cannot be read or decoded."""
    return image_from(read_file(path), path, min_side, hint)


def image_from(content: Content, path: Path | str, min_side: int | None = None,
               hint: str = "replace or remove it") -> np.ndarray:
    """decode_image of a file's bytes as read_file gave them; a file that could not be read is a DataError too."""
    if isinstance(content, OSError):
        raise DataError(f"cannot read this image ({content.strerror or content}); {hint}", path)
    return decode_image(content, path, min_side, hint)


def encode_image(image: np.ndarray, suffix: str, jpeg_quality: int = 95) -> bytes:
    """The image in the format its name says."""
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if suffix.lower() in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(suffix.lower(), image, params)
    if not ok:
        raise DataError(f"OpenCV cannot write {suffix} images; use .png or .jpg")
    return encoded.tobytes()


def images_by_subfolder(folder: Path) -> list[tuple[Path, str]]:
    """(image, name of its sub-folder) for every image one level down, sorted: the tutorials' layout,
    where a sub-folder's name gives the class (or labels) of the images in it."""
    if not folder.is_dir():
        raise DataError("image folder not found; give a folder with one sub-folder per class "
                        "(e.g. red_dress/, blue_jeans/)", folder)
    return sorted((path, sub.name) for sub in folder.iterdir() if sub.is_dir() and not sub.name.startswith(".")
                  for path in sub.iterdir() if path.is_file() and is_image_name(path))
