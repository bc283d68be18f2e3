"""Large generated Houses-format datasets for scale tests and benchmarks (never mixed into real data).

House n of a generated set is drawn from a real house chosen at random: its bedrooms, bathrooms and zip
code as they are, its area and price moved together by one factor (0.85 to 1.15: the price per square foot
of that house kept, so the joint distribution of attributes and prices is the real data's), and each of its
four photos a real photo of the same room kind (of any real house) changed: a random crop of 60 to 100 % of
each side resized back to the photo's size, a horizontal flip half the time, brightness times 0.8 to 1.2 and
uneven light (a smooth 4x4 field of 0.5 to 1.5), re-encoded as JPEG at quality 90. Decoding a generated photo
costs what decoding the real one costs. The changes are strong enough that two generated photos of one real
photo are not near-identical to the duplicate check (tasks.houses.duplicates: 0 of 1,680 such pairs within 6
bits of pHash, 0.24 % with an 85-100 % crop and no uneven light), so generated houses are distinct houses,
as a listings feed's are. Everything follows from the seed and the house number, so a set is the same on
every run, and any part of it can be generated alone.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tasks.core import interrupt
from tasks.core.errors import DataError
from tasks.core.files import atomic_write_text, replacing_folder
from tasks.houses.ingest import PHOTO_KINDS, ingest_houses

MARKER = "GENERATED.txt"  # in every generated folder: what made it


@dataclass(frozen=True)
class Source:
    """The real houses a generated set is drawn from."""

    attributes: np.ndarray  # (N, 5): bedrooms, bathrooms, area, zipcode, price
    photos: dict[str, list[bytes]]  # kind -> the encoded photos of that room kind

    @staticmethod
    def read(folder: Path) -> Source:
        ingested = ingest_houses(folder)
        houses = ingested.houses
        attributes = houses[["bedrooms", "bathrooms", "area", "zipcode", "price"]].to_numpy(dtype=np.float64)
        photos = {kind: [(folder / name).read_bytes() for name in houses[f"photo_{kind}"]] for kind in PHOTO_KINDS}
        return Source(attributes, photos)


def _changed_photo(data: bytes, rng: np.random.Generator) -> bytes:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    height, width = image.shape[:2]
    crop_h, crop_w = (max(8, int(side * rng.uniform(0.6, 1.0))) for side in (height, width))
    top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
    image = cv2.resize(image[top:top + crop_h, left:left + crop_w], (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    lighting = cv2.resize(rng.uniform(0.5, 1.5, (4, 4)).astype(np.float32), (width, height),
                          interpolation=cv2.INTER_CUBIC)  # uneven light: a smooth field over the photo
    image = np.clip(image.astype(np.float32) * rng.uniform(0.8, 1.2) * lighting[:, :, None], 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


def generated_house(source: Source, number: int, seed: int) -> tuple[str, dict[str, bytes]]:
    """House `number`'s attributes line and its four photos (kind -> JPEG bytes)."""
    rng = np.random.default_rng([seed, number])
    bedrooms, bathrooms, area, zipcode, price = source.attributes[rng.integers(len(source.attributes))]
    factor = rng.uniform(0.85, 1.15)
    line = f"{int(bedrooms)} {bathrooms:g} {max(1, round(area * factor))} {int(zipcode)} {round(price * factor)}"
    photos = {kind: _changed_photo(source.photos[kind][rng.integers(len(source.photos[kind]))], rng)
              for kind in PHOTO_KINDS}
    return line, photos


def write_generated(source_folder: Path, target: Path, houses: int, seed: int = 0,
                    workers: int | None = None) -> int:
    """Write `houses` generated houses into the new folder `target` (whole, or nothing on failure)."""
    if houses < 1:
        raise DataError(f"--houses {houses}: give 1 or more")
    source = Source.read(source_folder)
    with replacing_folder(target) as tmp:
        def write(number: int) -> str:
            interrupt.check()
            line, photos = generated_house(source, number, seed)
            for kind, data in photos.items():
                (tmp / f"{number}_{kind}.jpg").write_bytes(data)
            return line

        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:  # OpenCV releases the GIL
            lines = list(pool.map(write, range(1, houses + 1), chunksize=64))
        atomic_write_text(tmp / "HousesInfo.txt", "".join(line + "\n" for line in lines))
        atomic_write_text(tmp / MARKER, f"{houses} houses generated from {source_folder} with seed {seed} "
                                        "(house-pipeline synthetic-data); not real data\n")
    return houses
