"""Label new images with a trained classifier (a classify run's model/ folder), optionally drawing
the labels onto copies of the images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from tasks.classify.encoding import LabelEncoding
from tasks.classify.images import load_image
from tasks.core.errors import DataError
from tasks.core.files import atomic_write_bytes
from tasks.core.images import encode_image, read_image
from tasks.training.saved_models import load_keras_model


def load_classifier(folder: Path):
    """(Keras model, LabelEncoding, image size) from model.keras + labels.json, loaded safely."""
    model_file, labels_file = folder / "model.keras", folder / "labels.json"
    for path in (model_file, labels_file):
        if not path.is_file():
            raise DataError("not a classifier folder: give the model/ folder of a classify run "
                            "(model.keras + labels.json)", path)
    try:
        saved = json.loads(labels_file.read_text())
        encoding, size = LabelEncoding.from_json(saved), int(saved["image_size"])
    except (ValueError, KeyError, TypeError) as error:
        raise DataError(f"not a classifier's labels file ({type(error).__name__}: {error}); use the model/ folder "
                        "of a classify run", labels_file) from None
    return load_keras_model(model_file, "classifier"), encoding, size


def predict_labels(folder: Path, image_paths: list[Path]) -> list[dict]:
    """Per image: {"image": path, "labels": [(label, p)...], "columns": {column: (label, p)}}."""
    from tasks.classify.train import predict

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
    image = read_image(source)
    image = cv2.resize(image, (width, max(1, round(image.shape[0] * width / image.shape[1]))))
    for i, (name, (label, p)) in enumerate(result["columns"].items()):
        text = f"{name}: {label} {p:.0%}"
        origin = (10, 28 + 26 * i)
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2, cv2.LINE_AA)
    return atomic_write_bytes(target, encode_image(image, target.suffix or ".png"))
