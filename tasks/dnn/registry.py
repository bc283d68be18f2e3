"""The published networks for OpenCV's `dnn` module and fetching them with a lock file of sha256 hashes.

Lock file: `models.lock.json` in the models folder, `{file name: {"url": ..., "sha256": ...}}`.
The first fetch records each file's hash; later fetches and every load check the file against it
and refuse a file that no longer matches (a changed download, a damaged or swapped file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from tasks.core.download import download_file
from tasks.core.errors import DataError
from tasks.core.files import atomic_write_json
from tasks.core.hashing import file_sha256

LOCK_NAME = "models.lock.json"
JOHNSON = "http://cs.stanford.edu/people/jcjohns/fast-neural-style/models"
ONNX_ZOO = "https://github.com/onnx/models/raw/main/validated/vision/style_transfer/fast_neural_style/model"
ZHANG = "https://raw.githubusercontent.com/richzhang/colorization/caffe/colorization"
ZHANG_WEIGHTS = "http://eecs.berkeley.edu/~rich.zhang/projects/2016_colorization/files/demo_v2"


@dataclass(frozen=True)
class PublishedModel:
    """A published network: its files' URLs, what it does, and the options it needs."""

    kind: str  # "stylize" | "colorize"
    urls: tuple[str, ...]
    options: str = ""
    note: str = ""
    files: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "files", tuple(url.rsplit("/", 1)[-1] for url in self.urls))


def _johnson(path: str) -> PublishedModel:
    return PublishedModel("stylize", (f"{JOHNSON}/{path}",), note="Johnson et al., Torch .t7, ImageNet BGR "
                          "means (the defaults)")


def _onnx_zoo(name: str) -> PublishedModel:
    return PublishedModel("stylize", (f"{ONNX_ZOO}/{name}-9.onnx",), options="--mean 0,0,0 --swap-rb",
                          note="ONNX model zoo (PyTorch example): RGB in 0..255, no mean")


PUBLISHED: dict[str, PublishedModel] = {
    **{name: _johnson(f"eccv16/{name}.t7") for name in ("composition_vii", "la_muse", "starry_night",
                                                          "the_wave")},
    **{name: _johnson(f"instance_norm/{name}.t7") for name in ("candy", "feathers", "mosaic", "the_scream",
                                                                 "udnie")},
    **{f"onnx-{name}": _onnx_zoo(name) for name in ("candy", "mosaic", "pointilism", "rain-princess", "udnie")},
    "colorization": PublishedModel(
        "colorize", (f"{ZHANG}/models/colorization_deploy_v2.prototxt",
                     f"{ZHANG_WEIGHTS}/colorization_release_v2.caffemodel",
                     f"{ZHANG}/resources/pts_in_hull.npy"),
        options="--model colorization_release_v2.caffemodel --prototxt colorization_deploy_v2.prototxt "
                "--points pts_in_hull.npy",
        note="Zhang et al. 2016, Caffe; the cluster centres are installed after loading"),
}


def read_lock(folder: Path) -> dict[str, dict]:
    path = folder / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise DataError(f"lock file is not valid JSON ({error}); restore it or delete it to record new hashes",
                        path) from error


def verify_against_lock(path: Path) -> str:
    """The file's sha256; a DataError if the lock file next to it records a different one."""
    if not path.is_file():
        raise DataError("model file does not exist; pass an existing file or fetch it with "
                        "`python -m flows models fetch NAME`", path)
    sha = file_sha256(path)
    locked = read_lock(path.parent).get(path.name)
    if locked and locked["sha256"] != sha:
        raise DataError(f"sha256 {sha[:12]}... does not match the lock file ({locked['sha256'][:12]}...): the "
                        f"file changed since it was fetched; delete it and fetch it again, or restore it",
                        path)
    return sha


def fetch_model(name: str, folder: Path, base_url: str | None = None, timeout: float = 60.0) -> list[Path]:
    """Download a published model's files into `folder` (skipping those present), lock their hashes.

    `base_url` replaces the directory part of each URL (a mirror, or a local server in tests).
    A downloaded file whose hash differs from the lock is refused and not kept.
    """
    if name not in PUBLISHED:
        raise DataError(f"unknown model {name!r}; known: {', '.join(sorted(PUBLISHED))}")
    folder.mkdir(parents=True, exist_ok=True)
    lock = read_lock(folder)
    paths = []
    for url, file_name in zip(PUBLISHED[name].urls, PUBLISHED[name].files):
        if base_url:
            url = f"{base_url.rstrip('/')}/{file_name}"
        target = folder / file_name
        if target.is_file() and file_name in lock:
            verify_against_lock(target)
        else:
            tmp = folder / f".{file_name}.part"
            try:
                download_file(url, tmp, timeout)
                sha = file_sha256(tmp)
                locked = lock.get(file_name)
                if locked and locked["sha256"] != sha:
                    raise DataError(f"downloaded sha256 {sha[:12]}... does not match the lock file "
                                    f"({locked['sha256'][:12]}...): the published file changed; check the "
                                    f"source, and delete its entry in {LOCK_NAME} only if you trust it", url)
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)
            lock[file_name] = {"url": url, "sha256": sha}
            atomic_write_json(folder / LOCK_NAME, lock)
        paths.append(target)
    return paths
