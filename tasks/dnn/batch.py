"""The DNN flows' batch work: chunks of images, each image cached by content.

Cache entry `CACHE/<stylize|colorize>/KEY/` holds the output image and its timing, where KEY hashes
the image's bytes, the model files' sha256, the settings and the code version: a re-run skips
images already done with the same model and settings, and copies their output into place.
One Prefect task runs a chunk of images (a task per image costs more than a small network);
each image is still cached and, if bad, skipped on its own. A cv2.dnn Net is not safe to share
between threads, so each worker thread loads its own.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from tasks.core import interrupt
from tasks.core.cache import Cache
from tasks.core.errors import DataError
from tasks.core.files import atomic_write_bytes
from tasks.core.hashing import bytes_sha256, code_version, digest
from tasks.core.images import decode_image, encode_image
from tasks.dnn import colorize, stylize
from tasks.dnn import images as dnn_images
from tasks.dnn.net import install_cluster_centres, read_net
from tasks.dnn.registry import verify_against_lock

_thread_nets = threading.local()
MAX_CHUNK = 50  # images per task at most: progress is logged per chunk


@dataclass(frozen=True)
class DnnJob:
    """What every image of one run shares: the network files, its settings, where results go."""

    kind: str  # "stylize" | "colorize"
    model: Path  # the file cv2.dnn.readNet reads (Caffe: the .caffemodel weights)
    model_sha256: str  # of all the model's files together
    settings: dict = field(hash=False)  # stylize: width, mean, swap_rb; colorize: size
    prototxt: Path | None = None  # a Caffe model's network definition
    points: Path | None = None  # colorization cluster centres, installed after loading
    backend: str = "default"
    target: str = "cpu"
    cache_dir: Path = Path(".cache")
    out: Path = Path("runs/dnn")
    on_bad_image: str = "skip"

    def image_key(self, image_sha256: str) -> str:
        return digest(self.kind, image_sha256, self.model_sha256, self.settings, _code_version(self.kind))


@functools.cache
def _code_version(kind: str) -> str:
    return code_version(stylize if kind == "stylize" else colorize, dnn_images)


def model_sha256(model: Path, prototxt: Path | None, points: Path | None) -> str:
    """sha256 of the model's files together, each checked against its lock; a DataError for a bad mix."""
    if prototxt is None and model.suffix == ".caffemodel":
        raise DataError("a Caffe model needs its network definition: pass --prototxt DEPLOY.prototxt", model)
    if points is not None and prototxt is None:
        raise DataError("--points installs cluster centres into a Caffe colorization model; this model is not "
                        "Caffe (give --prototxt too, or leave --points out)", points)
    return digest([verify_against_lock(p) for p in (model, prototxt, points) if p is not None])


def load_net(job: DnnJob) -> cv2.dnn.Net:
    """The job's network, with the colorization cluster centres installed if it has them."""
    net = read_net(job.model, job.backend, job.target, job.prototxt)
    if job.kind == "colorize":
        install_cluster_centres(net, job.points, job.model)
    return net


def thread_net(job: DnnJob) -> cv2.dnn.Net:
    """This thread's own Net for the job's model (loaded on first use)."""
    nets = getattr(_thread_nets, "nets", None)
    if nets is None:
        nets = _thread_nets.nets = {}
    key = (job.kind, str(job.model), str(job.prototxt), str(job.points), job.model_sha256, job.backend, job.target)
    if key not in nets:
        nets[key] = load_net(job)
    return nets[key]


def run_network(job: DnnJob, image):
    net = thread_net(job)
    if job.kind == "stylize":
        return stylize.stylize(net, image, job.settings["width"], tuple(job.settings["mean"]),
                               job.settings["swap_rb"])
    return colorize.colorize(net, image, job.settings["size"])


def process_image(job: DnnJob, path: Path, name: str,
                  log: logging.Logger | logging.LoggerAdapter | None = None) -> dict:
    """One image: reuse its cached output or compute it; write it to OUT/name. A timing row."""
    interrupt.check()
    row = {"image": name, "status": "done", "width": "", "height": "", "ms": 0.0, "reason": ""}
    cache = Cache(job.cache_dir, log)
    try:
        data = path.read_bytes()
    except OSError as error:
        return _bad_image(job, row, DataError(f"cannot read this image ({error.strerror}); {dnn_images.BAD_IMAGE_HINT}",
                                              path))
    key = job.image_key(bytes_sha256(data))
    entry = cache.lookup(job.kind, key)
    if entry is not None:
        timing = json.loads((entry / "timing.json").read_text())
        atomic_write_bytes(job.out / name, (entry / f"output{path.suffix.lower()}").read_bytes())
        return {**row, **timing, "status": "reused"}
    try:
        image = decode_image(data, path, hint=dnn_images.BAD_IMAGE_HINT)
    except DataError as error:
        return _bad_image(job, row, error)
    start = time.perf_counter()
    result = run_network(job, image)
    encoded = encode_image(result, path.suffix)
    timing = {"width": result.shape[1], "height": result.shape[0],
              "ms": round(1000 * (time.perf_counter() - start), 2)}
    with cache.write(job.kind, key) as tmp:
        (tmp / f"output{path.suffix.lower()}").write_bytes(encoded)
        (tmp / "timing.json").write_text(json.dumps(timing))
    atomic_write_bytes(job.out / name, encoded)
    return {**row, **timing}


def _bad_image(job: DnnJob, row: dict, error: DataError) -> dict:
    if job.on_bad_image == "fail":
        raise error
    return {**row, "status": "skipped", "reason": str(error)}


def chunked(images: list, workers: int, max_chunk: int = MAX_CHUNK) -> list[list]:
    """Consecutive chunks, two per worker (so a slow chunk is not the last one alone), at most max_chunk long."""
    size = max(1, min(max_chunk, math.ceil(len(images) / (2 * workers))))
    return [images[i:i + size] for i in range(0, len(images), size)]


@contextlib.contextmanager
def opencv_threads_per_worker(workers: int) -> Iterator[None]:
    """Split OpenCV's threads between the workers (no oversubscription), restore afterwards."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(max(1, (os.cpu_count() or 1) // workers) if workers > 1 else before)
    try:
        yield
    finally:
        cv2.setNumThreads(before)
