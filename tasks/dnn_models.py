"""Network files for OpenCV's `dnn` module: the published models, fetching them with a lock file
of sha256 hashes, and loading any supported file through `cv2.dnn.readNet` on a chosen backend.

Lock file: `models.lock.json` in the models folder, `{file name: {"url": ..., "sha256": ...}}`.
The first fetch records each file's hash; later fetches and every load check the file against it
and refuse a file that no longer matches (a changed download, a damaged or swapped file).

`readNet` (OpenCV 4.x, pinned) picks the importer from the file's extension: Torch (.t7, .net),
Caffe (.caffemodel + .prototxt), ONNX, TensorFlow (.pb), TFLite and Darknet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tasks.cache import atomic_write_json
from tasks.errors import DataError
from tasks.fetch import download_file
from tasks.hashing import file_sha256

LOCK_NAME = "models.lock.json"
JOHNSON = "http://cs.stanford.edu/people/jcjohns/fast-neural-style/models"
ONNX_ZOO = "https://github.com/onnx/models/raw/main/validated/vision/style_transfer/fast_neural_style/model"
ZHANG = "https://raw.githubusercontent.com/richzhang/colorization/caffe/colorization"
ZHANG_WEIGHTS = "http://eecs.berkeley.edu/~rich.zhang/projects/2016_colorization/files/demo_v2"
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.680)
ANNEALED_MEAN_SCALE = 2.606  # the softmax temperature of Zhang et al.'s annealed mean (1 / 0.38)


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


BACKENDS = {"default": cv2.dnn.DNN_BACKEND_DEFAULT, "opencv": cv2.dnn.DNN_BACKEND_OPENCV,
            "cuda": cv2.dnn.DNN_BACKEND_CUDA}
TARGETS = {"cpu": cv2.dnn.DNN_TARGET_CPU, "cuda": cv2.dnn.DNN_TARGET_CUDA, "cuda_fp16": cv2.dnn.DNN_TARGET_CUDA_FP16,
           "opencl": cv2.dnn.DNN_TARGET_OPENCL}


def check_backend(backend: str, target: str) -> str:
    """A line for the log naming what runs the network; a DataError if OpenCV cannot do it."""
    if backend == "cuda" or target.startswith("cuda"):
        if not cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA):
            raise DataError(f"--backend {backend} --target {target}: this OpenCV ({cv2.__version__}) was built "
                            "without CUDA (the PyPI wheels are); use --backend default --target cpu, or an "
                            "OpenCV built with CUDA")
    return f"OpenCV {cv2.__version__} dnn, backend {backend}, target {target}, {cv2.getNumThreads()} thread(s)"


def read_net(model: Path, backend: str = "default", target: str = "cpu", config: Path | None = None
             ) -> cv2.dnn.Net:
    """A network from any file `cv2.dnn.readNet` reads; `config` is a Caffe model's .prototxt."""
    if model.suffix == ".prototxt" or (model.suffix == ".caffemodel" and config is None):
        raise DataError("a Caffe model is two files: pass the weights as --model WEIGHTS.caffemodel and the "
                        "network definition as --prototxt DEPLOY.prototxt", model)
    for path in (model, config):
        if path is not None:
            verify_against_lock(path)
    try:
        net = cv2.dnn.readNet(str(model), str(config) if config else "")
    except cv2.error as error:
        reason = str(error).strip().splitlines()[-1].split(" error: ")[-1]
        raise DataError(f"cv2.dnn cannot read this network ({reason}); check that the file is complete (fetch it "
                        "again) and is one readNet reads: Torch .t7, Caffe .caffemodel with --prototxt, ONNX, "
                        "TensorFlow .pb, TFLite", model) from None
    net.setPreferableBackend(BACKENDS[backend])
    net.setPreferableTarget(TARGETS[target])
    return net


def load_cluster_centres(points: Path) -> np.ndarray:
    """The (Q, 2) ab cluster centres (313 for Zhang et al.) from a .npy file, no pickle."""
    try:
        centres = np.load(points, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read the cluster centres ({error}); pass pts_in_hull.npy", points) from None
    if centres.ndim != 2 or 2 not in centres.shape:
        raise DataError(f"cluster centres must have shape (Q, 2), got {centres.shape}; pass pts_in_hull.npy",
                        points)
    return (centres if centres.shape[1] == 2 else centres.T).astype(np.float32)


def install_cluster_centres(net: cv2.dnn.Net, points: Path | None, source: Path) -> None:
    """As the tutorial: centres as the 1x1 conv weights of `class8_ab`, 2.606 in `conv8_313_rh`.

    Without `points`, a net whose `class8_ab` has no weights is refused (it cannot run).
    """
    names = set(net.getLayerNames())
    if points is None:
        if "class8_ab" in names and not net.getLayer(net.getLayerId("class8_ab")).blobs:
            raise DataError("this colorization model's class8_ab layer has no weights: pass its cluster centres "
                            "with --points pts_in_hull.npy", source)
        return
    missing = {"class8_ab", "conv8_313_rh"} - names
    if missing:
        raise DataError(f"--points installs cluster centres into layers class8_ab and conv8_313_rh; this model "
                        f"has no {', '.join(sorted(missing))} (leave --points out for other networks)", source)
    centres = load_cluster_centres(points)  # (Q, 2)
    clusters = centres.shape[0]
    net.getLayer(net.getLayerId("class8_ab")).blobs = [centres.T.reshape(2, clusters, 1, 1).copy()]
    net.getLayer(net.getLayerId("conv8_313_rh")).blobs = [np.full([1, clusters], ANNEALED_MEAN_SCALE, np.float32)]
