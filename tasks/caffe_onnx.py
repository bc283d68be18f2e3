"""Caffe (.prototxt + .caffemodel) -> ONNX, for OpenCV 5, whose `dnn` module no longer reads Caffe.

Reads the text prototxt and the binary caffemodel with small parsers of their own (no caffe, no
generated protobuf code) and writes an ONNX graph of the layers plain feed-forward nets use:
Input, Convolution, Deconvolution, ReLU, BatchNorm, Scale, Softmax, Dropout, Silence.

Colorization (Zhang et al.) as in the tutorial: the 313 ab cluster centres become the 1x1
convolution weights of `class8_ab` (2, 313, 1, 1) and `conv8_313_rh` multiplies by 2.606; the
tutorial sets these as layer blobs after loading, here they are written into the graph.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tasks.errors import DataError

ANNEALED_MEAN_SCALE = 2.606  # the softmax temperature of Zhang et al.'s annealed mean (1 / 0.38)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[{}:]|[^\s{}:#]+|#[^\n]*')


def parse_prototxt(text: str) -> dict[str, list]:
    """Protobuf text format -> {field: [values]}; messages become nested dicts of the same form."""
    tokens = [t for t in _TOKEN.findall(text) if not t.startswith("#")]
    position = 0

    def message(closing: bool) -> dict[str, list]:
        nonlocal position
        fields: dict[str, list] = {}
        while position < len(tokens):
            name = tokens[position]
            if name == "}":
                position += 1
                return fields
            position += 1
            if tokens[position] == ":":
                position += 1
            if tokens[position] == "{":
                position += 1
                value = message(True)
            else:
                value = _scalar(tokens[position])
                position += 1
            fields.setdefault(name, []).append(value)
        if closing:
            raise ValueError("unbalanced braces")
        return fields

    return message(False)


def _scalar(token: str):
    if token[0] in "\"'":
        return token[1:-1]
    if token in ("true", "True"):
        return True
    if token in ("false", "False"):
        return False
    try:
        return int(token)
    except ValueError:
        try:
            return float(token)
        except ValueError:
            return token  # an enum name (MAX, AVE, ...)


def _wire_fields(data: bytes):
    """(field number, wire type, value) of one protobuf message; value is bytes for length-delimited."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i:i + length], i + length
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7


def _blob(data: bytes) -> np.ndarray:
    """BlobProto -> float32 array: shape (7) or legacy num/channels/height/width (1-4), data (5) or double_data (8)."""
    shape, legacy, values = None, {}, []
    for number, wire, value in _wire_fields(data):
        if number == 7:
            dims = []
            for dim_number, dim_wire, dim in _wire_fields(value):
                if dim_number == 1 and dim_wire == 2:  # packed
                    position = 0
                    while position < len(dim):
                        d, position = _varint(dim, position)
                        dims.append(d)
                elif dim_number == 1:
                    dims.append(dim)
            shape = dims
        elif number in (1, 2, 3, 4) and wire == 0:
            legacy[number] = value
        elif number == 5:
            values.append(np.frombuffer(value, "<f4"))
        elif number == 8:
            values.append(np.frombuffer(value, "<f8").astype(np.float32))
    array = np.concatenate(values) if values else np.zeros(0, np.float32)
    if shape is None:
        shape = [legacy.get(n, 1) for n in (1, 2, 3, 4)]
    return array.astype(np.float32).reshape(shape)


def read_caffemodel(path: Path) -> dict[str, list[np.ndarray]]:
    """Layer name -> its blobs, from a binary NetParameter (`layer` = 100, or V1 `layers` = 2)."""
    weights: dict[str, list[np.ndarray]] = {}
    try:
        for number, wire, value in _wire_fields(path.read_bytes()):
            if wire != 2 or number not in (2, 100):
                continue
            name_field, blob_field = (1, 7) if number == 100 else (4, 6)
            name, blobs = None, []
            for field, field_wire, item in _wire_fields(value):
                if field == name_field and field_wire == 2:
                    name = item.decode()
                elif field == blob_field and field_wire == 2:
                    blobs.append(_blob(item))
            if name is not None:
                weights[name] = blobs
    except (ValueError, IndexError, UnicodeDecodeError) as error:
        raise DataError(f"not a readable Caffe weights file ({error}); fetch it again", path) from None
    return weights


def _ints(param: dict, name: str, default: int) -> list[int]:
    values = param.get(name, [])
    return [int(v) for v in values] or [default]


def _pair(values: list[int]) -> list[int]:
    return values * 2 if len(values) == 1 else values[:2]


def caffe_to_onnx(prototxt: Path, caffemodel: Path | None, points: Path | None, target: Path) -> Path:
    """Write the ONNX form of a Caffe net (with the colorization cluster centres if `points` is given)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    try:
        net = parse_prototxt(prototxt.read_text())
    except (OSError, UnicodeDecodeError, ValueError, IndexError) as error:
        raise DataError(f"not a readable Caffe prototxt ({error})", prototxt) from None
    weights = read_caffemodel(caffemodel) if caffemodel else {}
    centres = _cluster_centres(points) if points else None
    nodes, initializers, inputs = [], [], []
    current: dict[str, str] = {}  # Caffe blob name -> the ONNX tensor that holds it now

    def constant(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    for name in net.get("input", []):  # old-style inputs: `input: "data"` + input_shape / input_dim
        inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, None, None, None]))
        current[name] = name
    output = None
    for layer in net.get("layer", []) + net.get("layers", []):
        name, kind = layer["name"][0], str(layer["type"][0])
        bottoms = [current[b] for b in layer.get("bottom", [])]
        tops = layer.get("top", [])
        blobs = weights.get(name, [])
        if kind == "Input":
            inputs.append(helper.make_tensor_value_info(tops[0], TensorProto.FLOAT, [1, None, None, None]))
            current[tops[0]] = tops[0]
            continue
        if kind == "Silence":
            continue
        if kind in ("Convolution", "Deconvolution"):
            param = layer.get("convolution_param", [{}])[0]
            if name == "class8_ab" and centres is not None:
                blobs = [centres.T.reshape(2, -1, 1, 1)]  # (2, 313, 1, 1): ab = sum_q p_q * centre_q
            if not blobs:
                raise DataError(f"layer {name!r} ({kind}) has no weights in the caffemodel; pass the matching "
                                ".caffemodel", caffemodel or prototxt)
            args = [bottoms[0], constant(f"{name}_W", blobs[0])]
            if len(blobs) > 1 and param.get("bias_term", [True])[0]:
                args.append(constant(f"{name}_b", blobs[1].reshape(-1)))
            pad = _pair(_ints(param, "pad", 0))
            nodes.append(helper.make_node(
                "Conv" if kind == "Convolution" else "ConvTranspose", args, [name], name=name,
                kernel_shape=_pair(_ints(param, "kernel_size", 1)), strides=_pair(_ints(param, "stride", 1)),
                dilations=_pair(_ints(param, "dilation", 1)), pads=pad + pad, group=_ints(param, "group", 1)[0]))
        elif kind == "ReLU":
            slope = layer.get("relu_param", [{}])[0].get("negative_slope", [0.0])[0]
            nodes.append(helper.make_node("LeakyRelu", bottoms, [name], name=name, alpha=float(slope)) if slope
                         else helper.make_node("Relu", bottoms, [name], name=name))
        elif kind == "BatchNorm":
            mean, var, factor = blobs
            factor = float(factor.reshape(-1)[0])
            factor = 0.0 if factor == 0 else 1.0 / factor
            eps = float(layer.get("batch_norm_param", [{}])[0].get("eps", [1e-5])[0])
            channels = mean.size
            nodes.append(helper.make_node(
                "BatchNormalization",
                [bottoms[0], constant(f"{name}_scale", np.ones(channels)),
                 constant(f"{name}_bias", np.zeros(channels)), constant(f"{name}_mean", mean.reshape(-1) * factor),
                 constant(f"{name}_var", var.reshape(-1) * factor)],
                [name], name=name, epsilon=eps))
        elif kind == "Scale":
            param = layer.get("scale_param", [{}])[0]
            if name == "conv8_313_rh":
                blobs = [np.array([ANNEALED_MEAN_SCALE], np.float32)]
            elif not blobs:
                filler = param.get("filler", [{}])[0]
                blobs = [np.array([filler.get("value", [1.0])[0]], np.float32)]
            scale = blobs[0].reshape(-1)
            shape = (1, -1, 1, 1) if scale.size > 1 else (1,)
            nodes.append(helper.make_node("Mul", [bottoms[0], constant(f"{name}_s", scale.reshape(shape))],
                                          [f"{name}_mul" if len(blobs) > 1 else name], name=name))
            if len(blobs) > 1:
                nodes.append(helper.make_node("Add", [f"{name}_mul", constant(f"{name}_b",
                                                                             blobs[1].reshape(shape))], [name]))
        elif kind == "Softmax":
            axis = int(layer.get("softmax_param", [{}])[0].get("axis", [1])[0])
            nodes.append(helper.make_node("Softmax", bottoms, [name], name=name, axis=axis))
        elif kind == "Dropout":
            nodes.append(helper.make_node("Identity", bottoms, [name], name=name))
        else:
            raise DataError(f"layer {name!r} has type {kind}, which this converter does not handle (it knows "
                            "Input, Convolution, Deconvolution, ReLU, BatchNorm, Scale, Softmax, Dropout, "
                            "Silence); convert the model to ONNX another way", prototxt)
        current[tops[0]] = output = name
    if not inputs or output is None:
        raise DataError("the prototxt declares no input or no layers", prototxt)
    outputs = [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, None, None, None])]
    graph = helper.make_graph(nodes, prototxt.stem, inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="house-pipeline")
    model.ir_version = 8
    tmp = target.with_name(f".{target.name}.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(target)
    return target


def _cluster_centres(points: Path) -> np.ndarray:
    """The (Q, 2) ab cluster centres (313 for Zhang et al.) from a .npy file, no pickle."""
    try:
        centres = np.load(points, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read the cluster centres ({error}); pass pts_in_hull.npy", points) from None
    if centres.ndim != 2 or 2 not in centres.shape:
        raise DataError(f"cluster centres must have shape (Q, 2), got {centres.shape}", points)
    return (centres if centres.shape[1] == 2 else centres.T).astype(np.float32)

