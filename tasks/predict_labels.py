"""Label new images with a trained classifier (a classify run's model/ folder), optionally drawing
the labels onto copies of the images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from tasks.errors import DataError
from tasks.label_data import load_image
from tasks.label_encoding import LabelEncoding


def load_classifier(folder: Path):
    """(Keras model, LabelEncoding, image size) from model.keras + labels.json, loaded safely."""
    import keras

    from tasks import backbones, classifier_models  # noqa: F401  (register the custom layers for loading)

    model_file, labels_file = folder / "model.keras", folder / "labels.json"
    for path in (model_file, labels_file):
        if not path.is_file():
            raise DataError("not a classifier folder: give the model/ folder of a classify run "
                            "(model.keras + labels.json)", path)
    saved = json.loads(labels_file.read_text())
    return keras.models.load_model(model_file, safe_mode=True), LabelEncoding.from_json(saved), int(saved["image_size"])


def predict_labels(folder: Path, image_paths: list[Path]) -> list[dict]:
    """Per image: {"image": path, "labels": [(label, p)...], "columns": {column: (label, p)}}."""
    from tasks.classify_train import predict

    model, encoding, size = load_classifier(folder)
    images = np.stack([load_image(path, size) for path in image_paths]).astype(np.float32) / 255.0
    return [{"image": path, **result} for path, result in zip(image_paths, encoding.decode(predict(model, images)),
                                                                strict=True)]


def format_prediction(result: dict) -> str:
    labels = ", ".join(f"{label} {p:.1%}" for label, p in result["labels"]) or "(no label above the threshold)"
    columns = "; ".join(f"{name}: {label} {p:.1%}" for name, (label, p) in result["columns"].items())
    return f"{result['image']}: {labels}   [{columns}]"


def draw_labels(source: Path, result: dict, target: Path, width: int = 400) -> Path:
    """A copy of the image (resized to `width`) with one line per column's label drawn on it."""
    image = cv2.imread(str(source), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError("image cannot be decoded", source)
    image = cv2.resize(image, (width, max(1, round(image.shape[0] * width / image.shape[1]))))
    for i, (name, (label, p)) in enumerate(result["columns"].items()):
        text = f"{name}: {label} {p:.0%}"
        origin = (10, 28 + 26 * i)
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2, cv2.LINE_AA)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(target.suffix or ".png", image)
    if not ok:
        raise DataError("cannot encode the output image; use a .png or .jpg name", target)
    from tasks.cache import atomic_write_bytes

    atomic_write_bytes(target, encoded.tobytes())
    return target
