"""Loading any network file OpenCV's `dnn` reads, on a chosen backend and target, each file checked
against its lock first; the colorization model's cluster centres installed after loading.

`readNet` (OpenCV 4.x, pinned) picks the importer from the file's extension: Torch (.t7, .net),
Caffe (.caffemodel + .prototxt), ONNX, TensorFlow (.pb), TFLite and Darknet.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tasks.core.errors import DataError
from tasks.dnn.registry import verify_against_lock

ANNEALED_MEAN_SCALE = 2.606  # the softmax temperature of Zhang et al.'s annealed mean (1 / 0.38)

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
