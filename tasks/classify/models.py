"""Keras 3 functional builders for the image classifiers (uncompiled), and their compile step.

Input: "image", (B, S, S, 3) BGR scaled to [0, 1].
- multilabel: features -> Dense(classes, sigmoid) named "labels"; binary cross-entropy.
- multioutput: one branch per label column, each ending in its own softmax head named after the
  column; the gray column's branch sees a grayscale copy of the image (`Grayscale`, a named,
  serializable layer of tasks.training.layers), the others the colour image. Per-head losses and loss weights.
"""

from __future__ import annotations

import keras
from keras import layers

from tasks.core.errors import DataError
from tasks.training.backbones import image_features
from tasks.training.layers import Grayscale
from tasks.training.schedules import learning_rate_schedule


def build_multilabel(size: int, n_classes: int, backbone: str = "small", weights: str = "imagenet",
                     fine_tune_layers: int = 0, small_pooling: str = "flatten") -> keras.Model:
    inputs = keras.Input(shape=(size, size, 3), name="image")
    x = image_features(inputs, backbone, weights, fine_tune_layers, "features", small_pooling)  # (B, F)
    outputs = layers.Dense(n_classes, activation="sigmoid", name="labels")(x)  # (B, classes)
    return keras.Model({"image": inputs}, outputs, name="multilabel")


def build_multioutput(size: int, outputs: dict[str, int], gray_output: str, backbone: str = "small",
                      weights: str = "imagenet", fine_tune_layers: int = 0,
                      small_pooling: str = "flatten") -> keras.Model:
    """`outputs`: head name -> number of classes; `gray_output` names the head whose branch sees grayscale."""
    if gray_output not in outputs:
        raise DataError(f"--gray-output {gray_output!r} is not a label column; choose one of {', '.join(outputs)}")
    inputs = keras.Input(shape=(size, size, 3), name="image")
    heads = {}
    for name, n_classes in outputs.items():
        x = inputs
        if name == gray_output:
            x = Grayscale(1 if backbone == "small" else 3, name=f"{name}_grayscale")(inputs)
        x = image_features(x, backbone, weights, fine_tune_layers, f"{name}_branch", small_pooling)  # (B, F)
        heads[name] = layers.Dense(n_classes, activation="softmax", name=name)(x)  # (B, classes)
    return keras.Model({"image": inputs}, heads, name="multioutput")


def compile_classifier(model: keras.Model, kind: str, learning_rate: float, epochs: int,
                       loss_weights: dict[str, float] | None = None, schedule: str = "cosine",
                       steps_per_epoch: int = 1) -> None:
    """Adam; binary cross-entropy per label, or a categorical one per head with its loss weight."""
    optimizer = keras.optimizers.Adam(learning_rate_schedule(schedule, learning_rate, epochs, steps_per_epoch))
    if kind == "multilabel":
        model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["binary_accuracy"])
        return
    names = list(model.output.keys()) if isinstance(model.output, dict) else list(model.output_names)
    unknown = sorted(set(loss_weights or {}) - set(names))
    if unknown:
        raise DataError(f"--loss-weights names {', '.join(unknown)}, which are not outputs; outputs are "
                        f"{', '.join(names)}")
    model.compile(optimizer=optimizer,
                  loss={name: "categorical_crossentropy" for name in names},
                  loss_weights={name: float((loss_weights or {}).get(name, 1.0)) for name in names},
                  metrics={name: ["accuracy"] for name in names})
