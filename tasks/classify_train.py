"""Training a classifier on a cached labelled image set, under the regression flow's trainers.

The validation share is taken by group (a house's photos stay together), from the train split
only. Checkpoints, resume, early stopping and the trainers themselves are tasks.train's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tasks import classifier_models, train
from tasks.classify_options import ClassifierOptions
from tasks.label_data import LabelledImages, iter_image_batches, split_rows
from tasks.label_encoding import LabelEncoding


def group_validation_rows(groups: np.ndarray, rows: np.ndarray, fraction: float,
                          seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows): a seeded share of the groups of `rows`, whole groups only."""
    unique = np.unique(groups[rows])
    _, val_groups = train.validation_rows(len(unique), fraction, seed)
    held = np.isin(groups[rows], unique[val_groups])
    return rows[~held], rows[held]


def load_images(images: LabelledImages, rows: np.ndarray) -> np.ndarray:
    """(len(rows), S, S, 3) float32 in the order of `rows`."""
    out = np.zeros((len(rows), images.size, images.size, 3), np.float32)
    where = {row: i for i, row in enumerate(rows)}
    for positions, batch in iter_image_batches(images, np.asarray(rows)):
        out[[where[p] for p in positions]] = batch
    return out


def take(targets, rows: np.ndarray):
    return {k: v[rows] for k, v in targets.items()} if isinstance(targets, dict) else targets[rows]


def make_image_stream(images: LabelledImages, rows: np.ndarray, targets, batch_size: int, seed: int,
                      augment: list[str]) -> tf.data.Dataset:
    """tf.data over the Parquet cache: chunked reads, shuffle buffer, batches, augmentation, prefetch."""
    def generate():
        for positions, batch in iter_image_batches(images, rows):
            yield {"image": batch}, take(targets, positions)

    def spec(value):
        return tf.TensorSpec((None, *value.shape[1:]), tf.float32)

    target_spec = {k: spec(v) for k, v in targets.items()} if isinstance(targets, dict) else spec(targets)
    side = images.size
    data = tf.data.Dataset.from_generator(
        generate, output_signature=({"image": tf.TensorSpec((None, side, side, 3), tf.float32)}, target_spec))
    data = data.unbatch().shuffle(min(len(rows), 1024), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).apply(tf.data.experimental.assert_cardinality(-(-len(rows) // batch_size)))
    augmenter = train.image_augmenter(augment, seed)
    if augmenter is not None:
        data = data.map(lambda x, y: ({"image": augmenter(x["image"], training=True)}, y),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def build_classifier(options: ClassifierOptions, encoding: LabelEncoding, size: int,
                     steps_per_epoch: int = 1) -> keras.Model:
    if encoding.kind == "multilabel":
        model = classifier_models.build_multilabel(size, len(encoding.classes), options.backbone, options.weights,
                                                   options.fine_tune_layers, options.small_pooling)
    else:
        columns = list(encoding.columns)
        model = classifier_models.build_multioutput(
            size, {name: len(classes) for name, classes in encoding.columns.items()}, options.gray_column(columns),
            options.backbone, options.weights, options.fine_tune_layers, options.small_pooling)
    classifier_models.compile_classifier(model, encoding.kind, options.learning_rate, options.epochs,
                                         options.loss_weights, options.schedule, steps_per_epoch)
    return model


def train_classifier(images: LabelledImages, encoding: LabelEncoding, options: ClassifierOptions, folder: Path,
                     log: logging.Logger | logging.LoggerAdapter | None = None,
                     report: train.EpochHook | None = None) -> train.TrainResult:
    """Train (or resume) into `folder`; the best (or last) model ends as folder/model.keras."""
    log = log or logging.getLogger(__name__)
    report = report or (lambda epoch, epochs, logs: None)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options.seed)
    table = images.table([*images.label_columns, "group"])
    targets = encoding.encode(table)
    fit_rows, val_rows = group_validation_rows(table["group"].to_numpy(), split_rows(images, "train"),
                                               options.validation_fraction, options.seed)
    x = None if options.trainer == "stream" else {"image": load_images(images, fit_rows)}
    data = train.FitData(x, take(targets, fit_rows), {"image": load_images(images, val_rows)}, take(targets, val_rows),
                         lambda batch_size: make_image_stream(images, fit_rows, targets, batch_size, options.seed,
                                                              options.augment))
    def build(replicas: int) -> keras.Model:
        steps = -(-len(fit_rows) // (options.batch_size * replicas))
        return build_classifier(options, encoding, images.size, steps)

    return train.run_trainer(build, data, options, folder, log, report)


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 64):
    """Probabilities: (N, classes) for multilabel, {head: (N, classes)} for multioutput."""
    return model.predict({"image": images}, batch_size=batch_size, verbose=0)
