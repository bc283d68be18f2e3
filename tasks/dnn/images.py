"""Image batches for the DNN flows: which files to read (one file, a folder or a glob), the contact
sheet (input | output per image) and the timing table."""

from __future__ import annotations

import glob
from pathlib import Path

import cv2
import numpy as np

from tasks.core.errors import DataError
from tasks.core.files import atomic_write_bytes
from tasks.core.images import IMAGE_SUFFIXES, encode_image, is_image_name
from tasks.core.tables import markdown_table, write_csv

BAD_IMAGE_HINT = "replace or remove it, or pass --on-bad-image skip to leave it out"
REPORT_FILES = {"contact_sheet.png", "timing.csv", "timing.md", "summary.json"}
TIMING_COLUMNS = ["image", "status", "width", "height", "ms", "reason"]


def resolve_inputs(spec: str, limit: int | None = None) -> list[tuple[Path, str]]:
    """(path, output name) of each image: a file, the images of a folder, or a glob's matches, sorted."""
    path = Path(spec).expanduser()
    if path.is_file():
        found = [path]
    elif path.is_dir():
        found = sorted(p for p in path.iterdir() if is_image_name(p) and p.is_file())
    elif glob.has_magic(spec):
        found = sorted(Path(p) for p in glob.glob(str(path), recursive=True)
                       if is_image_name(Path(p)) and Path(p).is_file())
    else:
        raise DataError("no such file or folder; pass an image, a folder of images or a glob like "
                        "'photos/*.jpg'", spec)
    if not found:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found; check the path", spec)
    found = found[:limit] if limit else found
    names: dict[str, Path] = {}
    for image in found:
        if image.name in names:
            raise DataError(f"two inputs have the same name ({names[image.name]}); outputs would overwrite each "
                            "other: rename one or narrow the glob", image)
        if image.name in REPORT_FILES:
            raise DataError(f"an input may not be named {image.name} (the flow writes that report); rename it",
                            image)
        names[image.name] = image
    return [(image, image.name) for image in found]


LABEL_HEIGHT = 22  # the name strip above each row


def label_strip(name: str, width: int) -> np.ndarray:
    """(LABEL_HEIGHT, width, 3): the name in white on a dark strip; a long name keeps its end ('...' first)."""
    strip = np.full((LABEL_HEIGHT, width, 3), 40, np.uint8)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.5
    text = name
    while len(text.removeprefix("...")) > 1 and cv2.getTextSize(text, font, scale, 1)[0][0] > width - 8:
        text = "..." + text.removeprefix("...")[1:]
    cv2.putText(strip, text, (4, 16), font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return strip


def contact_sheet(pairs: list[tuple[str, np.ndarray, np.ndarray]], path: Path, row_height: int = 160) -> Path:
    """A PNG with one row per image: its name on a strip, then input | output scaled to `row_height`."""
    rows = []
    for name, before, after in pairs:
        cells = [cv2.resize(img, (max(1, round(img.shape[1] * row_height / img.shape[0])), row_height),
                            interpolation=cv2.INTER_AREA) for img in (before, after)]
        gap = np.full((row_height, 6, 3), 255, np.uint8)
        row = np.hstack([cells[0], gap, cells[1]])  # (row_height, w_in + 6 + w_out, 3)
        rows.append(np.vstack([label_strip(name, row.shape[1]), row]))  # (22 + row_height, w, 3)
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    atomic_write_bytes(path, encode_image(np.vstack(padded), ".png"))
    return path


def write_timing(rows: list[dict], seconds: float, out: Path) -> dict:
    """timing.csv and timing.md (per image ms, status), with totals; the totals as a dict."""
    done = [r for r in rows if r["status"] == "done"]
    totals = {"images": len(rows), "done": len(done), "reused": sum(r["status"] == "reused" for r in rows),
              "skipped": sum(r["status"] == "skipped" for r in rows), "seconds": round(seconds, 3),
              "images_per_second": round(len(rows) / seconds, 2) if seconds > 0 else None,
              "mean_ms_per_new_image": round(sum(r["ms"] for r in done) / len(done), 1) if done else None}
    write_csv(rows, TIMING_COLUMNS, out / "timing.csv")
    lines = [markdown_table(rows, TIMING_COLUMNS), "",
             f"{totals['images']} images ({totals['done']} new, {totals['reused']} reused from the cache, "
             f"{totals['skipped']} skipped) in {totals['seconds']} s: {totals['images_per_second']} images/s; "
             f"{totals['mean_ms_per_new_image']} ms per new image (network and pre/post-processing)."]
    atomic_write_bytes(out / "timing.md", ("\n".join(lines) + "\n").encode())
    return totals
