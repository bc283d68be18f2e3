"""AutoKeras searches for one sweep point under a wall-clock limit (resumable), and the search's
best model.

Image tasks search the `ImageBlock` type given by the search space (the vanilla conv block by
default: it fits 2 CPU cores; resnet/xception/efficientnet only when asked). The search never
overwrites its AutoKeras project folder: a killed search started again goes on from the finished
trials. The search is given validation data and its own early stopping, so AutoKeras does not
refit the best model after the search; the best trial's weights are the model.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import autokeras as ak
import keras
import numpy as np

from tasks.automl.data import TaskData
from tasks.automl.options import Budget, SearchSpace
from tasks.core import interrupt
from tasks.core.errors import DataError
from tasks.core.files import atomic_path, atomic_write_json
from tasks.training.saved_models import load_keras_model

# Harmless noise of AutoKeras on Keras 3.10: single inputs given as arrays rather than one-item
# lists, and optimizer state not restored when a trial's best weights are loaded for inference.
QUIET = (("The structure of `inputs` doesn't match", UserWarning),
         ("Skipping variable loading for optimizer", UserWarning))


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
        interrupt.check()  # Ctrl-C, SIGTERM: the search stops after this batch
        if time.time() >= self.deadline:
            self.model.stop_training = True
            self.on_deadline()

    def on_epoch_end(self, epoch, logs=None):
        self.on_epoch((logs or {}).get("val_loss"))

    def on_train_end(self, logs=None):
        self.on_epoch(None, trial_finished=True)


@dataclass
class SearchResult:
    model: keras.Model | None
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
               log: logging.Logger | logging.LoggerAdapter, spent: float = 0.0,
               need_a_trial: bool = True) -> SearchResult:
    """Search within the budget; `work` keeps the AutoKeras project and the seconds spent so far. `spent`:
    seconds of the budget already used (by the hand-built trial). Without a finished trial the model is None,
    which is an error unless `need_a_trial` is False."""
    project, progress_path = work / "project", work / "progress.json"
    work.mkdir(parents=True, exist_ok=True)
    progress = json.loads(progress_path.read_text()) if progress_path.is_file() else {"seconds": 0.0, "trials": 0}
    progress["seconds"] += spent
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

    with warnings.catch_warnings():
        for message, category in QUIET:
            warnings.filterwarnings("ignore", message=message, category=category)
        if time.time() < deadline:
            callbacks = [keras.callbacks.EarlyStopping(patience=space.patience, min_delta=1e-4),
                         _Deadline(deadline, on_deadline, on_epoch)]
            search.fit(data.x_fit if len(data.x_fit) > 1 else data.x_fit[0], data.y_fit,
                       validation_data=(data.x_val if len(data.x_val) > 1 else data.x_val[0], data.y_val),
                       epochs=budget.epochs, callbacks=callbacks, verbose=0)
        finished = bool(search.tuner.oracle.get_best_trials(1))
        if not finished and need_a_trial:
            raise DataError(f"the search finished no trial within {budget.seconds:g} s; give the budget more time")
        model = search.tuner.get_best_model() if finished else None
    seconds = used_before + time.time() - started
    atomic_write_json(progress_path, {"seconds": seconds, "trials": progress["trials"]})
    return SearchResult(model, _trials(search), seconds, state["stopped"], resumed)


def predict(model: keras.Model, x: list[np.ndarray]) -> np.ndarray:
    with warnings.catch_warnings():
        for message, category in QUIET:
            warnings.filterwarnings("ignore", message=message, category=category)
        return np.asarray(model.predict(x if len(x) > 1 else x[0], verbose=0, batch_size=256))


def save_model(model: keras.Model, path: Path) -> None:
    """Complete or absent: saved beside, then renamed."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def load_model(path: Path) -> keras.Model:
    """A sweep point's best model (AutoKeras layers registered), in safe mode."""
    with warnings.catch_warnings():
        for message, category in QUIET:
            warnings.filterwarnings("ignore", message=message, category=category)
        return load_keras_model(path, "AutoML model", custom_objects=ak.CUSTOM_OBJECTS)
