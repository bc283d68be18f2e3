"""The data of each sweep task: search-train, validation and test sets as AutoKeras takes them.

Tasks: `attributes` and `photos` and `mixed` (regression on the preprocessed houses: the
attributes, the montages, or both), `classify` (an image classifier: the room type of each house
photo, cut from the montages, or the classes of an image folder). Validation and test are by
house, never by photo. Regression targets are standardized log prices, so every trial starts on scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tasks.core.errors import DataError
from tasks.core.images import images_by_subfolder, read_image
from tasks.core.splits import grouped_holdout_rows
from tasks.houses.arrays import read_split
from tasks.houses.dataset import Dataset
from tasks.houses.ingest import PHOTO_KINDS
from tasks.houses.montage import montage_tiles

TASK_INPUTS = {"attributes": ["attributes"], "photos": ["montage"], "mixed": ["montage", "attributes"]}


@dataclass
class TaskData:
    """Inputs (a list, in the AutoModel's input order) and targets of the search and test sets."""

    x_fit: list[np.ndarray]
    y_fit: np.ndarray
    x_val: list[np.ndarray]
    y_val: np.ndarray
    x_test: list[np.ndarray]
    y_test: np.ndarray  # prices (regression) or class indices (classification)
    classes: list[str] | None = None  # classification only
    log_mean: float = 0.0  # regression: target = (log(price) - log_mean) / log_std
    log_std: float = 1.0
    fit_rows: np.ndarray | None = None  # regression: the train split's rows searched on, and validated on
    val_rows: np.ndarray | None = None

    def to_price(self, predicted: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(predicted, np.float64).reshape(-1) * self.log_std + self.log_mean)


def _split_rows(n: int, fraction: float, seed: int, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Search-train and validation rows; a duplicate group of houses stays on one side."""
    fit, val = grouped_holdout_rows(n, fraction, seed, groups)
    if len(val) == 0:
        raise DataError(f"a validation share of {fraction} of {n} houses is no house; raise --validation-fraction")
    return fit, val


def regression_data(dataset: Dataset, task: str, validation_fraction: float, seed: int) -> TaskData:
    """Train houses split into search-train and validation; test houses kept for the evaluation."""
    names = TASK_INPUTS[task]
    train = read_split(dataset.train_path, (*names, "price", "group"))
    test = read_split(dataset.test_path, (*names, "price"))
    fit, val = _split_rows(len(train["price"]), validation_fraction, seed, train["group"])
    logs = np.log(train["price"])
    mean, std = float(logs[fit].mean()), float(logs[fit].std() or 1.0)
    target = ((logs - mean) / std).astype(np.float32)
    return TaskData([train[n][fit] for n in names], target[fit], [train[n][val] for n in names], target[val],
                    [test[n] for n in names], test["price"], log_mean=mean, log_std=std, fit_rows=fit, val_rows=val)


def room_tiles(montages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2t, 2t, 3) montages -> (4N, t, t, 3) photos and their room index (PHOTO_KINDS order)."""
    tiles = montage_tiles(montages)  # (N, 4, t, t, 3)
    return tiles.reshape(-1, *tiles.shape[2:]), np.tile(np.arange(len(PHOTO_KINDS)), len(montages))


def room_type_data(dataset: Dataset, validation_fraction: float, seed: int) -> TaskData:
    """Each house photo labelled with its room; validation and test by house, never by photo."""
    train_split = read_split(dataset.train_path, ("montage", "group"))
    train, test = train_split["montage"], read_split(dataset.test_path, ("montage",))["montage"]
    fit, val = _split_rows(len(train), validation_fraction, seed, train_split["group"])
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = room_tiles(train[fit]), room_tiles(train[val]), room_tiles(test)
    return TaskData([x_fit], y_fit, [x_val], y_val, [x_test], y_test, classes=list(PHOTO_KINDS))


def scan_image_folder(folder: Path) -> list[tuple[Path, str]]:
    """(image path, class) for every image in a sub-folder of `folder`; the sub-folder names the class."""
    items = images_by_subfolder(folder)
    classes = sorted({label for _, label in items})
    if len(classes) < 2:
        raise DataError(f"no labels: found {len(classes)} class sub-folder(s) with images; put each class's "
                        "images in a sub-folder named after the class (e.g. red_dress/, blue_jeans/)", folder)
    return items


def folder_data(folder: Path, side: int, test_size: float, validation_fraction: float, seed: int) -> TaskData:
    """An image-folder dataset, each image resized to side x side, split stratified by class."""
    from sklearn.model_selection import train_test_split

    items = scan_image_folder(folder)
    classes = sorted({label for _, label in items})
    images = [cv2.resize(read_image(path), (side, side), interpolation=cv2.INTER_AREA) for path, _ in items]
    x = np.stack(images).astype(np.float32) / 255.0
    y = np.array([classes.index(label) for _, label in items])
    rows = np.arange(len(y))
    train_rows, test_rows = train_test_split(rows, test_size=test_size, random_state=seed, stratify=y)
    fit_rows, val_rows = train_test_split(train_rows, test_size=validation_fraction, random_state=seed,
                                          stratify=y[train_rows])
    return TaskData([x[fit_rows]], y[fit_rows], [x[val_rows]], y[val_rows], [x[test_rows]], y[test_rows],
                    classes=classes)
