"""Fast neural style transfer (Johnson et al.) as in the OpenCV tutorial: resize to a width,
subtract the ImageNet BGR means, forward, add the means back, clip to 8 bits."""

from __future__ import annotations

import cv2
import numpy as np

from tasks.core.images import IMAGENET_BGR_MEANS


def resize_to_width(image: np.ndarray, width: int) -> np.ndarray:
    """Keep the aspect ratio; area interpolation (as imutils.resize in the tutorial)."""
    height, old_width = image.shape[:2]
    new_height = max(1, int(height * width / old_width))
    return cv2.resize(image, (width, new_height), interpolation=cv2.INTER_AREA)


def style_blob(image: np.ndarray, mean: tuple[float, float, float] = IMAGENET_BGR_MEANS,
               swap_rb: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (1, 3, H, W) float32 with the means subtracted (after the swap, if any)."""
    height, width = image.shape[:2]
    return cv2.dnn.blobFromImage(image, 1.0, (width, height), mean, swapRB=swap_rb, crop=False)


def style_output(output: np.ndarray, mean: tuple[float, float, float] = IMAGENET_BGR_MEANS,
                 swap_rb: bool = False) -> np.ndarray:
    """(1, 3, H, W) network output -> (H, W, 3) uint8 BGR: add the means back, clip, round."""
    image = output[0].transpose(1, 2, 0) + np.asarray(mean, np.float32)  # (H, W, 3)
    if swap_rb:
        image = image[:, :, ::-1]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def stylize(net: cv2.dnn.Net, image: np.ndarray, width: int, mean=IMAGENET_BGR_MEANS,
            swap_rb: bool = False) -> np.ndarray:
    """One image through a style network; the result has the resized image's size."""
    resized = resize_to_width(image, width)  # (H, width, 3)
    net.setInput(style_blob(resized, mean, swap_rb))
    output = net.forward()  # (1, 3, H', W'): some nets return a pixel or two more or less
    styled = style_output(output, mean, swap_rb)
    if styled.shape[:2] != resized.shape[:2]:
        styled = cv2.resize(styled, (resized.shape[1], resized.shape[0]), interpolation=cv2.INTER_AREA)
    return styled
