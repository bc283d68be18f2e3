"""Black-and-white colorization (Zhang et al.) as in the OpenCV tutorial: the network sees the
lightness L of the Lab image (minus 50) at a fixed size and predicts the two colour channels ab,
which are resized to the photo and merged with its own full-resolution L.

Any network with that contract works: the published Caffe model (its 313 ab cluster centres and
the 2.606 scale installed after loading, see `tasks.dnn_models.install_cluster_centres`) or our
own ONNX colorizer.
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks.core.errors import DataError

L_OFFSET = 50.0


def to_lab(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (H, W, 3) float32 Lab (L 0..100, a and b about -127..127)."""
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)


def lightness_blob(lab: np.ndarray, size: int) -> np.ndarray:
    """Lab image -> (1, 1, size, size) float32: L resized to size x size, minus 50."""
    resized = cv2.resize(lab, (size, size))  # bilinear, as the tutorial
    return cv2.dnn.blobFromImage(resized[:, :, 0] - L_OFFSET)


def merge_ab(lab: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Original L + predicted ab (1, 2, h, w) resized to the photo -> (H, W, 3) uint8 BGR."""
    height, width = lab.shape[:2]
    ab = cv2.resize(ab[0].transpose(1, 2, 0), (width, height))  # (H, W, 2)
    colorized = np.concatenate([lab[:, :, :1], ab], axis=2)  # (H, W, 3) Lab
    bgr = np.clip(cv2.cvtColor(colorized, cv2.COLOR_LAB2BGR), 0, 1)
    return (255 * bgr).astype(np.uint8)  # truncated, as the tutorial


def colorize(net: cv2.dnn.Net, image: np.ndarray, size: int = 224) -> np.ndarray:
    """One photo (colour or gray, BGR) -> its colorized version at the same size."""
    lab = to_lab(image)
    net.setInput(lightness_blob(lab, size))
    ab = net.forward()  # (1, 2, h, w)
    if ab.ndim != 4 or ab.shape[1] != 2:
        raise DataError(f"a colorization network must output ab as (1, 2, H, W); this one gives {ab.shape}")
    return merge_ab(lab, ab)
