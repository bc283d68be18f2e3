"""AutoKeras searches for one sweep point: the data of each task, the search under a wall-clock
limit (resumable), and the held-out evaluation of the best model.

Tasks: `attributes` (StructuredDataRegressor on the preprocessed attributes), `photos` (an image
regressor on the montages), `mixed` (AutoModel: ImageInput + StructuredDataInput -> RegressionHead)
and `classify` (an image classifier: the room type of each house photo, cut from the montages, or
the classes of an image folder). Image tasks search the `ImageBlock` type given by the search
space (the vanilla conv block by default: it fits 2 CPU cores; resnet/xception/efficientnet only
when asked). Regression targets are standardized log prices, so every trial starts on scale.

The search never overwrites its AutoKeras project folder: a killed search started again goes on
from the finished trials. The search is given validation data and its own early stopping, so
AutoKeras does not refit the best model after the search; the best trial's weights are the model.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import autokeras as ak
import cv2
import keras
import numpy as np

from tasks.cache import atomic_write_json
from tasks.dataset import Dataset
from tasks.errors import DataError
from tasks.images import TILE_POSITIONS
from tasks.ingest import PHOTO_KINDS
from tasks.sweep_options import Budget, SearchSpace
from tasks.train import validation_rows
from tasks.training_data import TargetScale, load_arrays

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

# Harmless noise of AutoKeras on Keras 3.10: single inputs given as arrays rather than one-item
# lists, and optimizer state not restored when a trial's best weights are loaded for inference.
warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match", category=UserWarning)
warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer", category=UserWarning)


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

    def to_price(self, predicted: np.ndarray) -> np.ndarray:
        return np.exp(np.asarray(predicted, np.float64).reshape(-1) * self.log_std + self.log_mean)


def _split_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    fit, val = validation_rows(n, fraction, seed)
    if len(val) == 0:
        raise DataError(f"a validation share of {fraction} of {n} houses is no house; raise --validation-fraction")
    return fit, val


def _inputs(arrays: dict[str, np.ndarray], task: str) -> list[np.ndarray]:
    names = {"attributes": ["attributes"], "photos": ["montage"], "mixed": ["montage", "attributes"]}[task]
    return [arrays[name] for name in names]


def regression_data(dataset: Dataset, task: str, space: SearchSpace) -> TaskData:
    """Train houses split into search-train and validation; test houses kept for the evaluation."""
    scale = TargetScale("scaled", dataset.encoders()["price_max"])  # only to read; log prices are standardized below
    x, _, prices = load_arrays(dataset.train_path, "mixed", scale)
    x_test, _, test_prices = load_arrays(dataset.test_path, "mixed", scale)
    fit, val = _split_rows(len(prices), space.validation_fraction, space.seed)
    logs = np.log(prices)
    mean, std = float(logs[fit].mean()), float(logs[fit].std() or 1.0)
    target = ((logs - mean) / std).astype(np.float32)
    return TaskData([a[fit] for a in _inputs(x, task)], target[fit], [a[val] for a in _inputs(x, task)], target[val],
                    _inputs(x_test, task), test_prices, log_mean=mean, log_std=std)


def room_tiles(montages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2t, 2t, 3) montages -> (4N, t, t, 3) photos and their room index (PHOTO_KINDS order)."""
    side = montages.shape[1] // 2
    tiles = [montages[:, r * side:(r + 1) * side, c * side:(c + 1) * side] for r, c in TILE_POSITIONS]
    photos = np.stack(tiles, axis=1).reshape(-1, side, side, 3)
    return photos, np.tile(np.arange(len(PHOTO_KINDS)), len(montages))


def room_type_data(dataset: Dataset, space: SearchSpace) -> TaskData:
    """Each house photo labelled with its room; validation and test by house, never by photo."""
    scale = TargetScale("scaled", dataset.encoders()["price_max"])
    train = load_arrays(dataset.train_path, "cnn", scale)[0]["montage"]
    test = load_arrays(dataset.test_path, "cnn", scale)[0]["montage"]
    fit, val = _split_rows(len(train), space.validation_fraction, space.seed)
    (x_fit, y_fit), (x_val, y_val), (x_test, y_test) = room_tiles(train[fit]), room_tiles(train[val]), room_tiles(test)
    return TaskData([x_fit], y_fit, [x_val], y_val, [x_test], y_test, classes=list(PHOTO_KINDS))


def scan_image_folder(folder: Path) -> list[tuple[Path, str]]:
    """(image path, class) for every image in a sub-folder of `folder`; the sub-folder names the class."""
    if not folder.is_dir():
        raise DataError("image folder not found; give a folder with one sub-folder per class", folder)
    items = sorted((path, sub.name) for sub in folder.iterdir() if sub.is_dir() and not sub.name.startswith(".")
                   for path in sub.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
    classes = sorted({label for _, label in items})
    if len(classes) < 2:
        raise DataError(f"no labels: found {len(classes)} class sub-folder(s) with images; put each class's "
                        "images in a sub-folder named after the class (e.g. red_dress/, blue_jeans/)", folder)
    return items


def folder_data(folder: Path, side: int, test_size: float, space: SearchSpace) -> TaskData:
    """An image-folder dataset, each image resized to side x side, split stratified by class."""
    from sklearn.model_selection import train_test_split

    items = scan_image_folder(folder)
    classes = sorted({label for _, label in items})
    images = []
    for path, _ in items:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError("image cannot be decoded; replace or remove it", path)
        images.append(cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA))
    x = np.stack(images).astype(np.float32) / 255.0
    y = np.array([classes.index(label) for _, label in items])
    rows = np.arange(len(y))
    train_rows, test_rows = train_test_split(rows, test_size=test_size, random_state=space.seed, stratify=y)
    fit_rows, val_rows = train_test_split(train_rows, test_size=space.validation_fraction,
                                          random_state=space.seed, stratify=y[train_rows])
    return TaskData([x[fit_rows]], y[fit_rows], [x[val_rows]], y[val_rows], [x[test_rows]], y[test_rows],
                    classes=classes)


def _image_block(space: SearchSpace) -> ak.ImageBlock:
    return ak.ImageBlock(block_type=None if space.image_block == "any" else space.image_block, augment=False)


def build_search(task: str, data: TaskData, budget: Budget, space: SearchSpace, project: Path) -> ak.AutoModel:
    """The AutoKeras model of a task; reloads the project's finished trials if it exists."""
    common = {"max_trials": budget.max_trials, "directory": str(project.parent), "project_name": project.name,
              "overwrite": False, "seed": space.seed, "tuner": space.tuner}
    if task == "attributes":
        width = data.x_fit[0].shape[1]
        names = [f"feature_{i}" for i in range(width)]
        return ak.StructuredDataRegressor(column_names=names, column_types=dict.fromkeys(names, "numerical"),
                                          **common)
    if task == "photos":
        image = ak.ImageInput()
        return ak.AutoModel(inputs=image, outputs=ak.RegressionHead()(_image_block(space)(image)), **common)
    if task == "mixed":
        image, attributes = ak.ImageInput(), ak.StructuredDataInput()
        merged = ak.Merge()([_image_block(space)(image), ak.StructuredDataBlock()(attributes)])
        return ak.AutoModel(inputs=[image, attributes], outputs=ak.RegressionHead()(merged), **common)
    image = ak.ImageInput()
    head = ak.ClassificationHead(num_classes=len(data.classes))(_image_block(space)(image))
    return ak.AutoModel(inputs=image, outputs=head, **common)


class _Deadline(keras.callbacks.Callback):
    """Stops the running trial when the wall-clock limit passes (after the current batch, so the
    epoch still ends, is validated and checkpointed) and tells the search to start no other."""

    def __init__(self, deadline: float, on_deadline, on_epoch):
        super().__init__()
        # Plain functions: KerasTuner deep-copies callbacks per trial and functions copy by reference.
        self.deadline, self.on_deadline, self.on_epoch = deadline, on_deadline, on_epoch

    def on_train_batch_end(self, batch, logs=None):
        if time.time() >= self.deadline:
            self.model.stop_training = True
            self.on_deadline()

    def on_epoch_end(self, epoch, logs=None):
        self.on_epoch((logs or {}).get("val_loss"))

    def on_train_end(self, logs=None):
        self.on_epoch(None, trial_finished=True)


@dataclass
class SearchResult:
    model: keras.Model
    trials: list[dict]
    seconds: float
    stopped_by_deadline: bool
    resumed_trials: int


def _trials(search: ak.AutoModel) -> list[dict]:
    oracle = search.tuner.oracle
    rows = []
    for trial in sorted(oracle.trials.values(), key=lambda t: int(t.trial_id)):
        steps = trial.best_step + 1 if trial.best_step is not None else None
        rows.append({"trial": trial.trial_id, "status": trial.status, "val_loss": trial.score,
                     "best_epoch": steps, "hyperparameters": trial.hyperparameters.values})
    return rows


def _finished_trials(project: Path) -> int:
    return sum(1 for path in project.glob("trial_*/trial.json")
               if json.loads(path.read_text()).get("status") == "COMPLETED")


def run_search(task: str, data: TaskData, budget: Budget, space: SearchSpace, work: Path,
               log: logging.Logger | logging.LoggerAdapter) -> SearchResult:
    """Search within the budget; `work` keeps the AutoKeras project and the seconds spent so far."""
    project, progress_path = work / "project", work / "progress.json"
    work.mkdir(parents=True, exist_ok=True)
    progress = json.loads(progress_path.read_text()) if progress_path.is_file() else {"seconds": 0.0, "trials": 0}
    resumed = _finished_trials(project) if project.is_dir() else 0
    if resumed:
        log.info("Resuming the search: %d trial(s) already finished, %.0f of %.0f s used",
                 resumed, progress["seconds"], budget.seconds)
    started = time.time()
    deadline = started + max(0.0, budget.seconds - progress["seconds"])
    state = {"stopped": False, "trial_best": None}
    keras.utils.set_random_seed(space.seed)
    search = build_search(task, data, budget, space, project)

    def on_deadline() -> None:
        if not state["stopped"]:
            state["stopped"] = True
            log.info("Wall-clock limit of %.0f s reached: stopping the running trial, keeping the best so far",
                     budget.seconds)
        search.tuner.oracle.max_trials = len(search.tuner.oracle.trials)

    used_before = progress["seconds"]

    def on_epoch(val_loss: float | None, trial_finished: bool = False) -> None:
        if val_loss is not None and (state["trial_best"] is None or val_loss < state["trial_best"]):
            state["trial_best"] = float(val_loss)
        progress["trials"] += trial_finished
        spent = used_before + time.time() - started
        atomic_write_json(progress_path, {"seconds": spent, "trials": progress["trials"]})
        if trial_finished:
            log.info("Trial %d of at most %d finished: best val_loss %s (%.0f of %.0f s used)",
                     progress["trials"], budget.max_trials,
                     "n/a" if state["trial_best"] is None else f"{state['trial_best']:.4f}", spent, budget.seconds)
            state["trial_best"] = None

    if time.time() < deadline:
        callbacks = [keras.callbacks.EarlyStopping(patience=space.patience, min_delta=1e-4),
                     _Deadline(deadline, on_deadline, on_epoch)]
        search.fit(data.x_fit if len(data.x_fit) > 1 else data.x_fit[0], data.y_fit,
                   validation_data=(data.x_val if len(data.x_val) > 1 else data.x_val[0], data.y_val),
                   epochs=budget.epochs, callbacks=callbacks, verbose=0)
    if not search.tuner.oracle.get_best_trials(1):
        raise DataError(f"the search finished no trial within {budget.seconds:g} s; give the budget more time")
    model = search.tuner.get_best_model()
    seconds = used_before + time.time() - started
    atomic_write_json(progress_path, {"seconds": seconds, "trials": progress["trials"]})
    return SearchResult(model, _trials(search), seconds, state["stopped"], resumed)


def predict(model: keras.Model, x: list[np.ndarray]) -> np.ndarray:
    return np.asarray(model.predict(x if len(x) > 1 else x[0], verbose=0, batch_size=256))


def save_model(model: keras.Model, path: Path) -> None:
    """Complete or absent: saved beside, then renamed."""
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)


def load_model(path: Path) -> keras.Model:
    return keras.models.load_model(path, custom_objects=ak.CUSTOM_OBJECTS, safe_mode=True)
