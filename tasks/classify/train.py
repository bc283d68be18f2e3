"""Training a classifier on a cached labelled image set with the shared trainer engine.

The validation share is taken by group (a house's photos stay together), from the train split
only. Checkpoints, resume, early stopping and the trainers themselves are tasks.training's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tasks.classify import models
from tasks.classify.encoding import LabelEncoding
from tasks.classify.images import LabelledImages, iter_image_batches, split_rows
from tasks.classify.options import ClassifierOptions
from tasks.core.splits import group_holdout_rows
from tasks.training.engine import EpochHook, FitData, TrainResult, run_trainer, take_rows
from tasks.training.streams import chunk_stream


def load_images(images: LabelledImages, rows: np.ndarray) -> np.ndarray:
    """(len(rows), S, S, 3) float32 in the order of `rows`."""
    out = np.zeros((len(rows), images.size, images.size, 3), np.float32)
    where = {row: i for i, row in enumerate(rows)}
    for positions, batch in iter_image_batches(images, np.asarray(rows)):
        out[[where[p] for p in positions]] = batch
    return out


def make_image_stream(images: LabelledImages, rows: np.ndarray, targets, batch_size: int, seed: int,
                      augment: list[str]) -> tf.data.Dataset:
    """tf.data over the Parquet cache: chunked reads, shuffle buffer, batches, augmentation, prefetch."""
    def chunks():
        for positions, batch in iter_image_batches(images, rows):
            yield {"image": batch}, take_rows(targets, positions)

    return chunk_stream(chunks, len(rows), batch_size, seed, augment=augment, image_input="image")


def build_classifier(options: ClassifierOptions, encoding: LabelEncoding, size: int,
                     steps_per_epoch: int = 1) -> keras.Model:
    if encoding.kind == "multilabel":
        model = models.build_multilabel(size, len(encoding.classes), options.backbone, options.weights,
                                        options.fine_tune_layers, options.small_pooling)
    else:
        columns = list(encoding.columns)
        model = models.build_multioutput(
            size, {name: len(classes) for name, classes in encoding.columns.items()}, options.gray_column(columns),
            options.backbone, options.weights, options.fine_tune_layers, options.small_pooling)
    models.compile_classifier(model, encoding.kind, options.learning_rate, options.epochs, options.loss_weights,
                              options.schedule, steps_per_epoch)
    return model


def train_classifier(images: LabelledImages, encoding: LabelEncoding, options: ClassifierOptions, folder: Path,
                     log: logging.Logger | logging.LoggerAdapter | None = None,
                     report: EpochHook | None = None) -> TrainResult:
    """Train (or resume) into `folder`; the best (or last) model ends as folder/model.keras."""
    log = log or logging.getLogger(__name__)
    report = report or (lambda epoch, epochs, logs: None)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options.seed)
    table = images.table([*images.label_columns, "group"])
    targets = encoding.encode(table)
    fit_rows, val_rows = group_holdout_rows(table["group"].to_numpy(), split_rows(images, "train"),
                                            options.validation_fraction, options.seed)
    x = None if options.trainer == "stream" else {"image": load_images(images, fit_rows)}
    data = FitData(x, take_rows(targets, fit_rows), {"image": load_images(images, val_rows)},
                   take_rows(targets, val_rows),
                   lambda batch_size: make_image_stream(images, fit_rows, targets, batch_size, options.seed,
                                                        options.augment))

    def build(replicas: int) -> keras.Model:
        steps = -(-len(fit_rows) // (options.batch_size * replicas))
        return build_classifier(options, encoding, images.size, steps)

    return run_trainer(build, data, options, folder, log, report)


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 64):
    """Probabilities: (N, classes) for multilabel, {head: (N, classes)} for multioutput."""
    return model.predict({"image": images}, batch_size=batch_size, verbose=0)
