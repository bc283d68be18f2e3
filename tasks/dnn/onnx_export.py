"""Export of a small Keras image network to ONNX for `cv2.dnn.readNet`, written with onnx.helper
from the layers' weights (tf2onnx is not available for this stack).

Handles the layers our colorizer uses: ZeroPadding2D, Conv2D ('valid', or 'same' with stride 1;
dilation; ReLU or linear), UpSampling2D (nearest) and Rescaling. Keras works in NHWC, the ONNX
graph in NCHW: kernels (kh, kw, in, out) become (out, in, kh, kw). Padding is always written out
as explicit pads: OpenCV's handling of `auto_pad` SAME_UPPER has differed from TensorFlow's 'same'
with strides or dilation (seen in OpenCV 5.0), and TensorFlow's strided 'same' pads depend on the
input size's parity, so a strided convolution takes a ZeroPadding2D before it instead (symmetric,
the same for every size).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.core.errors import DataError
from tasks.core.extras import require_extra
from tasks.core.files import atomic_path


def keras_to_onnx(model, path: Path, input_name: str = "L") -> Path:
    """Write `model` (one NHWC image input, a chain of supported layers) as an NCHW ONNX graph."""
    require_extra("dnn", "onnx")
    from onnx import helper

    nodes, weights, current = [], {}, input_name
    pending = [0, 0, 0, 0]  # top, left, bottom, right from ZeroPadding2D layers, folded into the next Conv
    for layer in model.layers:
        kind, name = type(layer).__name__, layer.name
        config = layer.get_config()
        if kind == "InputLayer":
            continue
        if kind == "ZeroPadding2D":
            (top, bottom), (left, right) = config["padding"]
            pending = [pending[0] + top, pending[1] + left, pending[2] + bottom, pending[3] + right]
            continue
        if kind == "Conv2D":
            kernel, *bias = layer.get_weights()
            weights[f"{name}_W"] = kernel.transpose(3, 2, 0, 1)  # (out, in, kh, kw)
            inputs = [current, f"{name}_W"]
            if bias:
                weights[f"{name}_B"] = bias[0]
                inputs.append(f"{name}_B")
            pads = pending
            if config["padding"] == "same":
                if max(config["strides"]) > 1 or min(config["kernel_size"]) % 2 == 0:
                    raise DataError(f"layer {name}: 'same' padding is exported only for stride 1 and odd kernels; "
                                    "put a ZeroPadding2D before a 'valid' convolution instead")
                half = [d * (k - 1) // 2 for d, k in zip(config["dilation_rate"], config["kernel_size"])]
                pads = [pads[0] + half[0], pads[1] + half[1], pads[2] + half[0], pads[3] + half[1]]
            pending = [0, 0, 0, 0]
            nodes.append(helper.make_node("Conv", inputs, [name], kernel_shape=list(config["kernel_size"]),
                                          strides=list(config["strides"]), dilations=list(config["dilation_rate"]),
                                          pads=pads))
            current = name
            activation = config["activation"]
            if activation == "relu":
                nodes.append(helper.make_node("Relu", [current], [f"{name}_relu"]))
                current = f"{name}_relu"
            elif activation != "linear":
                raise DataError(f"layer {name}: activation {activation!r} is not exported (relu or linear)")
        elif kind == "UpSampling2D" and config["interpolation"] == "nearest":
            height, width = config["size"]
            weights[f"{name}_scales"] = np.array([1, 1, height, width], np.float32)
            nodes.append(helper.make_node("Resize", [current, "", f"{name}_scales"], [name], mode="nearest",
                                          coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
            current = name
        elif kind == "Rescaling":
            weights[f"{name}_scale"] = np.array([config["scale"]], np.float32)
            weights[f"{name}_offset"] = np.array([config["offset"]], np.float32)
            nodes.append(helper.make_node("Mul", [current, f"{name}_scale"], [f"{name}_mul"]))
            nodes.append(helper.make_node("Add", [f"{name}_mul", f"{name}_offset"], [name]))
            current = name
        else:
            raise DataError(f"layer {name} ({kind}) is not supported by the ONNX export "
                            "(ZeroPadding2D, Conv2D, UpSampling2D nearest, Rescaling)")
    channels_in = model.input_shape[-1]
    channels_out = model.output_shape[-1]
    return save_onnx(nodes, weights, path, channels_in, channels_out, input_name)


def save_onnx(nodes: list, initializers: dict[str, np.ndarray], path: Path, channels_in: int = 3,
              channels_out: int = 3, input_name: str = "input") -> Path:
    """A graph with one NCHW float input of any height and width, written atomically."""
    require_extra("dnn", "onnx")
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, path.stem,
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, channels_in, None, None])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, [1, channels_out, None, None])],
        [numpy_helper.from_array(np.ascontiguousarray(v, np.float32), k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="house-pipeline")
    model.ir_version = 8
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
    return path
