"""Small ONNX networks with known weights, built with onnx.helper: for tests, benchmarks and smoke
runs of the DNN flows (`python -m flows models toy NAME PATH`). They are not trained models.

- `sepia`: a 1x1 convolution 3 -> 3 whose weights and bias make the style flow's output the sepia
  matrix applied to the input pixels (the flow subtracts the means before and adds them after).
- `conv`: 3x3 convolutions 3 -> C -> C -> 3 with ReLU and seeded random weights: a few MFLOPs per
  pixel, a stand-in for a small style network in benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.core.images import IMAGENET_BGR_MEANS
from tasks.dnn.onnx_export import save_onnx

# Sepia tone in BGR order: output channel (B, G, R) = SEPIA_BGR @ input (B, G, R).
SEPIA_BGR = np.array([[0.131, 0.534, 0.272],
                      [0.168, 0.686, 0.349],
                      [0.189, 0.769, 0.393]], np.float32)


def sepia_net(path: Path, mean=IMAGENET_BGR_MEANS) -> Path:
    """y = M (x - mean) + (M mean - mean), so that y + mean = M x."""
    from onnx import helper

    mean = np.asarray(mean, np.float32)
    bias = SEPIA_BGR @ mean - mean  # (3,)
    node = helper.make_node("Conv", ["input", "W", "B"], ["output"], kernel_shape=[1, 1])
    return save_onnx([node], {"W": SEPIA_BGR.reshape(3, 3, 1, 1), "B": bias}, path)


def conv_net(path: Path, channels: int = 16, seed: int = 0) -> Path:
    """3 -> channels -> channels -> 3, 3x3 'same' convolutions, ReLU between."""
    from onnx import helper

    rng = np.random.default_rng(seed)
    shapes = [(channels, 3), (channels, channels), (3, channels)]
    weights, nodes, current = {}, [], "input"
    for i, (out_c, in_c) in enumerate(shapes):
        weights[f"W{i}"] = rng.normal(0, (2 / (9 * in_c)) ** 0.5, (out_c, in_c, 3, 3))
        weights[f"B{i}"] = np.zeros(out_c)
        nodes.append(helper.make_node("Conv", [current, f"W{i}", f"B{i}"], [f"conv{i}"], kernel_shape=[3, 3],
                                      pads=[1, 1, 1, 1]))
        current = f"conv{i}"
        if i < len(shapes) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"relu{i}"]))
            current = f"relu{i}"
    return save_onnx(nodes, weights, path)


TOY_NETWORKS = {"sepia": sepia_net, "conv": conv_net}
