"""The search's first trial: the train flow's hand-built price model, with its own recipe.

A regression point trains the task's hand-built model (attributes -> mlp, photos -> cnn, mixed ->
mixed; its default options: target, loss, 200 epochs, no early stopping) on the search's fit houses
before AutoKeras starts, and scores it on the search's validation houses with the loss AutoKeras
trials are scored by (MSE of the standardized log price). The point keeps whichever scores best, so
a search can only improve on the hand-built model. The seed gets at most half the budget; one that
does not finish in it is left out (said in the log) and the search goes on with what is left.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from tasks.automl.data import TaskData
from tasks.automl.options import HAND_BUILT
from tasks.core.errors import TimeLimitReached
from tasks.houses.dataset import Dataset
from tasks.price.data import TargetScale
from tasks.price.options import PriceOptions
from tasks.price.train import predict_prices, train_model
from tasks.training.saved_models import load_keras_model

SEED_SHARE = 0.5  # of the point's budget


@dataclass
class SeedTrial:
    """The hand-built trial: its model and validation loss, or why it is left out."""

    strategy: str
    seconds: float
    model: keras.Model | None = None
    val_loss: float | None = None
    left_out: str | None = None
    options: PriceOptions | None = None

    def trial_row(self) -> dict:
        """Its row in trials.csv, beside AutoKeras's trials."""
        return {"trial": "hand-built", "status": "COMPLETED" if self.model else "LEFT OUT", "val_loss": self.val_loss,
                "best_epoch": self.options.epochs if self.model and self.options else None,
                "hyperparameters": {"hand_built": self.strategy, "left_out": self.left_out}}

    def test_prices(self, dataset: Dataset) -> np.ndarray:
        scale = TargetScale(self.options.target, dataset.encoders()["price_max"])
        return predict_prices(self.model, dataset.test_path, self.strategy, scale)[1]


def _every_tenth(log: logging.Logger | logging.LoggerAdapter, task: str):
    def report(epoch: int, epochs: int, logs: dict) -> None:
        if epoch % max(1, epochs // 10) == 0:
            log.info("AutoML %s: hand-built trial, epoch %d/%d: loss %.4f", task, epoch, epochs, logs.get("loss", 0))
    return report


def train_seed(task: str, data: TaskData, dataset: Dataset, seed: int, seconds: float, work: Path,
               log: logging.Logger | logging.LoggerAdapter) -> SeedTrial:
    """Train (or resume, in work/) the hand-built model of `task` on the fit houses within `seconds`."""
    strategy = HAND_BUILT[task]
    options = PriceOptions(strategy=strategy, seed=seed, time_limit=seconds)
    log.info("AutoML %s: first trial, the hand-built %s model (%d epochs, at most %.0f s)", task, strategy,
             options.epochs, seconds)
    started = time.monotonic()
    try:
        result = train_model(dataset.train_path, dataset.encoders(), options, work, log, _every_tenth(log, task),
                             rows=data.fit_rows)
    except TimeLimitReached:
        why = f"it did not finish within {seconds:.0f} s, {SEED_SHARE:.0%} of the budget"
        log.info("AutoML %s: the hand-built trial is left out (%s); the search goes on without it", task, why)
        return SeedTrial(strategy, time.monotonic() - started, left_out=why)
    model = load_keras_model(result.model_path, "hand-built model")
    scale = TargetScale(options.target, dataset.encoders()["price_max"])
    _, prices = predict_prices(model, dataset.train_path, strategy, scale, data.val_rows)
    standardized = (np.log(np.maximum(prices, 1.0)) - data.log_mean) / data.log_std
    val_loss = float(np.mean((standardized - data.y_val) ** 2))
    log.info("AutoML %s: hand-built trial finished: val_loss %.4f (%.0f s)", task, val_loss,
             time.monotonic() - started)
    return SeedTrial(strategy, time.monotonic() - started, model, val_loss, options=options)
