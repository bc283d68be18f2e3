"""Small networks and images for the DNN tests: a tiny Caffe colorization net (with layers named
class8_ab and conv8_313_rh), a tiny Torch7 style net, photos with known pixels, a corrupt image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tasks.core.images import IMAGENET_BGR_MEANS as IMAGENET_BGR_MEAN
from tasks.dnn.toy_networks import SEPIA_BGR
from tests.dnn.caffe_writer import write_caffemodel
from tests.dnn.torch_writer import Module, spatial_convolution, write_t7

CLUSTERS = 313
COLORIZATION_PROTOTXT = """name: "TinyLtoAB"
layer { name: "data_l" type: "Input" top: "data_l" input_param { shape { dim: 1 dim: 1 dim: 16 dim: 16 } } }
layer { name: "conv8_313" type: "Convolution" bottom: "data_l" top: "conv8_313"
        convolution_param { num_output: 313 kernel_size: 1 stride: 1 dilation: 1 } }
layer { name: "conv8_313_norm" type: "BatchNorm" bottom: "conv8_313" top: "conv8_313" batch_norm_param { } }
layer { name: "conv8_313_rh" type: "Scale" bottom: "conv8_313" top: "conv8_313_rh"
        scale_param { bias_term: False filler { type: 'constant' value: 2.606 } } }
layer { name: "class8_313_rh" type: "Softmax" bottom: "conv8_313_rh" top: "class8_313_rh" }
layer { name: "class8_ab" type: "Convolution" bottom: "class8_313_rh" top: "class8_ab"
        convolution_param { num_output: 2 kernel_size: 1 stride: 1 dilation: 1 } }
layer { name: "Silence" type: "Silence" bottom: "class8_ab" }
"""


def tiny_colorization_model(folder: Path, seed: int = 0) -> dict:
    """prototxt, caffemodel (conv8_313 weights + BatchNorm statistics; no class8_ab weights) and points."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    params = {"W": rng.normal(0, 0.05, (CLUSTERS, 1, 1, 1)).astype(np.float32),
              "b": rng.normal(0, 1, CLUSTERS).astype(np.float32),
              "mean": rng.normal(0, 0.5, CLUSTERS).astype(np.float32),
              "var": rng.uniform(0.5, 2, CLUSTERS).astype(np.float32),
              "centres": rng.uniform(-90, 90, (CLUSTERS, 2)).astype(np.float32)}
    (folder / "tiny.prototxt").write_text(COLORIZATION_PROTOTXT)
    factor = np.array([4.0], np.float32)  # Caffe keeps running sums: mean and var are divided by it
    write_caffemodel(folder / "tiny.caffemodel", {"conv8_313": [params["W"], params["b"]],
                                                  "conv8_313_norm": [params["mean"] * 4, params["var"] * 4, factor]})
    np.save(folder / "pts_in_hull.npy", params["centres"])
    return {"prototxt": folder / "tiny.prototxt", "caffemodel": folder / "tiny.caffemodel",
            "points": folder / "pts_in_hull.npy", **params}


def expected_ab(params: dict, lightness: np.ndarray) -> np.ndarray:
    """The tiny net by hand: (1, 1, H, W) L - 50 -> (1, 2, H, W) annealed-mean ab."""
    z = params["W"][:, 0, 0, 0][None, :, None, None] * lightness + params["b"][None, :, None, None]
    z = (z - params["mean"][None, :, None, None]) / np.sqrt(params["var"][None, :, None, None] + 1e-5)
    z = 2.606 * z
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return np.einsum("qc,bqhw->bchw", params["centres"], p)


def sepia_shift_t7(path: Path) -> Path:
    """nn.Sequential: a 1x1 sepia convolution (as tasks.toy_networks.sepia_net), then a 3x3 one with
    zero padding 1 that moves every pixel one column left: out(y, x) = sepia(in(y, x + 1)), and the
    last column, padding only, comes out as the means the flow adds back."""
    mean = np.asarray(IMAGENET_BGR_MEAN, np.float32)
    shift = np.zeros((3, 3, 3, 3), np.float32)  # (out, in, kH, kW)
    for channel in range(3):
        shift[channel, channel, 1, 2] = 1.0  # the right-hand neighbour
    network = Module("nn.Sequential", {"modules": [
        spatial_convolution(SEPIA_BGR.reshape(3, 3, 1, 1), SEPIA_BGR @ mean - mean),
        spatial_convolution(shift, np.zeros(3, np.float32), pad=1)], "train": False})
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_t7(path, network)


def write_images(folder: Path, count: int = 3, size: tuple[int, int] = (24, 32)) -> list[Path]:
    """`count` small noisy colour photos img0.png, img1.jpg, ... (PNG and JPEG alternate)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        path = folder / f"img{i}{'.png' if i % 2 == 0 else '.jpg'}"
        image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        assert cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def write_two_tone_photos(folder: Path, count: int = 8, size: tuple[int, int] = (24, 32)) -> list[Path]:
    """Photos a colorizer can learn: blue top, green bottom, brightness varying a little per photo, so the
    colour follows from lightness and position and leaving them gray is far from right."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    height, width = size
    paths = []
    for i in range(count):
        image = np.zeros((height, width, 3), np.uint8)
        image[: height // 2] = (200 - 5 * i, 120, 40)
        image[height // 2:] = (40, 160 - 5 * i, 60)
        image = np.clip(image + rng.integers(-5, 6, image.shape), 0, 255).astype(np.uint8)
        paths.append(folder / f"p{i}.png")
        assert cv2.imwrite(str(paths[-1]), image)
    return paths


def write_corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    return path
