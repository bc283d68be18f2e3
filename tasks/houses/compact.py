"""Write a compact copy of a Houses-format folder: same files, photos shrunk so that the long
side is at most `max_side` pixels. Used to make the default data in data/houses."""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

from tasks.core.errors import DataError
from tasks.core.files import replacing_folder
from tasks.core.images import encode_image, read_image
from tasks.houses.ingest import find_attributes_file, find_photos


def shrink_photo(source: Path, target: Path, max_side: int) -> None:
    image = read_image(source)
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    target.with_suffix(".jpg").write_bytes(encode_image(image, ".jpg", jpeg_quality=90))


def compact_dataset(source: Path, target: Path, max_side: int = 160) -> int:
    """Copy attributes file and photos (as JPEG) into `target`, atomically. Returns photo count."""
    if target.exists():
        raise DataError("target already exists; choose a new folder", target)
    attributes = find_attributes_file(source)
    photos = [p for kinds in find_photos(source).values() for p in kinds.values()]
    with replacing_folder(target) as tmp:
        shutil.copyfile(attributes, tmp / attributes.name)
        with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
            list(pool.map(lambda p: shrink_photo(p, tmp / p.name, max_side), photos))
    return len(photos)
