"""Image feature extractors: the small VGG-like CNN, or a Keras Applications network.

Every extractor takes BGR images scaled to [0, 1] (as the Parquet caches hold them) and ends in
a flat feature vector. A Keras Applications network gets its own preprocessing as a named,
serializable layer (`tasks.training.layers.ApplicationPreprocess`, no Lambda), so a saved model carries it.

Weights of an Applications network: `--weights PATH` (a `*_notop.h5` file), `imagenet` (the file
Keras keeps in `$KERAS_HOME/models/`, default `~/.keras/models/`; never downloaded here: a
missing file is a clear error that says where to put it), or `none` (random initialisation).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import keras
from keras import layers

from tasks.core.errors import DataError
from tasks.training.layers import ApplicationPreprocess

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"


@dataclass(frozen=True)
class Application:
    builder: str  # attribute of keras.applications
    mode: Literal["caffe", "tf"]  # caffe: BGR 0-255 minus ImageNet means; tf: scaled to [-1, 1]
    default_size: int
    min_size: int
    weights_file: str  # name in the Keras cache (no-top weights)
    weights_folder: str  # folder of WEIGHTS_URL


APPLICATIONS = {
    "vgg16": Application("VGG16", "caffe", 224, 32, "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg16"),
    "vgg19": Application("VGG19", "caffe", 224, 32, "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "vgg19"),
    "resnet50": Application("ResNet50", "caffe", 224, 32,
                            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "resnet"),
    "inceptionv3": Application("InceptionV3", "tf", 299, 75,
                               "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "inception_v3"),
    "xception": Application("Xception", "tf", 299, 71,
                            "xception_weights_tf_dim_ordering_tf_kernels_notop.h5", "xception"),
}
SMALL_DEFAULT_SIZE = 96


def default_size(backbone: str) -> int:
    return SMALL_DEFAULT_SIZE if backbone == "small" else APPLICATIONS[backbone].default_size


def min_size(backbone: str) -> int:
    return 8 if backbone == "small" else APPLICATIONS[backbone].min_size


def keras_cache_folder() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def resolve_weights(backbone: str, weights: str) -> str | None:
    """The weights argument for keras.applications: a local file path, or None (random)."""
    if backbone == "small" or weights == "none":
        return None
    app = APPLICATIONS[backbone]
    if weights == "imagenet":
        path = keras_cache_folder() / app.weights_file
        if not path.is_file():
            raise DataError(
                f"ImageNet weights for {backbone} are not on disk (nothing is downloaded at run time). Download "
                f"{WEIGHTS_URL}{app.weights_folder}/{app.weights_file} and put it at {path} (or set KERAS_HOME), "
                "pass the file with --weights PATH, or use --weights none to start from random weights")
        return str(path)
    path = Path(weights)
    if not path.is_file():
        raise DataError(f"weights file not found; give a {app.weights_file}-style .h5 file, imagenet or none", path)
    return str(path)


def small_vgg(x, filters: tuple[int, ...] = (32, 64, 128), dense: int = 256, pooling: str = "flatten",
              name: str = "small") -> keras.KerasTensor:
    """The tutorials' SmallerVGGNet, slimmed for CPUs: conv blocks (one conv, then two per block),
    each with batch norm, max pooling and dropout 0.25; then either flatten -> dense -> batch norm
    -> dropout 0.5 (the tutorials'), or global average pooling -> dropout 0.5 (far fewer weights).
    Batch norm tracks its statistics with momentum 0.9: short CPU trainings are too short for 0.99."""
    for i, count in enumerate(filters):
        for j in range(1 if i == 0 else 2):
            x = layers.Conv2D(count, 3, padding="same", name=f"{name}_conv_{i}_{j}")(x)
            x = layers.Activation("relu", name=f"{name}_relu_{i}_{j}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn_{i}_{j}")(x)
        x = layers.MaxPooling2D(3 if i == 0 else 2, name=f"{name}_pool_{i}")(x)  # /3 first, then /2
        x = layers.Dropout(0.25, name=f"{name}_drop_{i}")(x)
    if pooling == "average":
        x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)  # (B, filters[-1])
        return layers.Dropout(0.5, name=f"{name}_gap_drop")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(dense, activation="relu", name=f"{name}_dense")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_dense_bn")(x)
    return layers.Dropout(0.5, name=f"{name}_dense_drop")(x)


def application_features(x, backbone: str, weights: str, fine_tune_layers: int, name: str) -> keras.KerasTensor:
    """An Applications network without its top, average-pooled. Frozen unless fine_tune_layers > 0:
    then its last N layers train (batch norm layers stay frozen, as Keras' fine-tuning guide advises)."""
    app = APPLICATIONS[backbone]
    side = x.shape[1]
    if side < app.min_size:
        raise DataError(f"{backbone} needs images of at least {app.min_size} px, got {side}; "
                        f"raise --image-size (its default is {app.default_size})")
    network = getattr(keras.applications, app.builder)(
        include_top=False, weights=resolve_weights(backbone, weights), input_shape=tuple(x.shape[1:]), pooling="avg")
    network.name = f"{name}_{backbone}"
    network.trainable = fine_tune_layers > 0
    if fine_tune_layers > 0:
        for layer in network.layers[:-fine_tune_layers]:
            layer.trainable = False
        for layer in network.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
    x = ApplicationPreprocess(app.mode, name=f"{name}_preprocess")(x)
    return network(x, training=False)  # batch norm in inference mode, frozen or fine-tuned


def image_features(x, backbone: str = "small", weights: str = "imagenet", fine_tune_layers: int = 0,
                   name: str = "features", small_pooling: str = "flatten") -> keras.KerasTensor:
    """(B, S, S, 3) BGR in [0, 1] -> (B, F) features."""
    if backbone == "small":
        return small_vgg(x, pooling=small_pooling, name=name)
    return application_features(x, backbone, weights, fine_tune_layers, name)
