"""Training a price model under a selected strategy (which inputs) and trainer (how batches reach
the model), on the dataset's train split or some of its rows (cross-validation folds)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tasks.core.splits import grouped_holdout_rows
from tasks.houses.arrays import iter_split, read_split, split_rows
from tasks.price import models
from tasks.price.data import STRATEGY_INPUTS, TargetScale, iter_batches, load_arrays, train_prices
from tasks.price.options import PriceOptions
from tasks.training.engine import EpochHook, FitData, TrainResult, run_trainer, save_model_file
from tasks.training.saved_models import load_keras_model
from tasks.training.schedules import learning_rate_schedule
from tasks.training.streams import chunk_stream


@keras.saving.register_keras_serializable(package="houses")
class PriceMAPE(keras.losses.Loss):
    """The price's absolute percentage error, as a fraction, for a model that predicts the log price:
    |exp(prediction - log price) - 1|. Keras's MAPE on a price scaled to (0, 1] divides by the target, so
    the cheapest houses' gradients are the largest and training is thrown about by them; here the
    gradient is at most 1 for a prediction below the price, and the start (the mean log price) is sane."""

    def __init__(self, name: str = "price_mape", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        # Keras gives the targets as (B,) and the predictions as (B, 1): without the reshape they would
        # broadcast to (B, B), every prediction against every house of the batch.
        y_true = keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), keras.ops.shape(y_pred))
        return keras.ops.mean(keras.ops.abs(keras.ops.exp(y_pred - y_true) - 1.0), axis=-1)


LOSSES = {"mape": "mean_absolute_percentage_error", "price-mape": PriceMAPE(), "mae": "mean_absolute_error",
          "mse": "mean_squared_error", "huber": "huber"}


def build_model(options: PriceOptions, n_features: int, side: int, output_bias: float) -> keras.Model:
    shape = (side, side, 3)
    backbone = models.BackboneChoice(options.backbone, options.weights, options.fine_tune_layers)
    recipe = models.ImageRecipe(tuple(options.augment), options.conv_norm, options.small_pooling, options.seed)
    if options.strategy == "mlp":
        return models.build_mlp(n_features, tuple(options.hidden), output_bias)
    if options.strategy == "cnn":
        return models.build_cnn(shape, tuple(options.filters), tuple(options.dense), options.dropout, output_bias,
                                backbone, recipe)
    return models.build_mixed(n_features, shape, tuple(options.hidden), tuple(options.filters),
                              tuple(options.dense), options.dropout, output_bias=output_bias, backbone=backbone,
                              head_activation=options.head_activation, recipe=recipe,
                              fusion=options.fusion, photo_l2=options.photo_l2)


def compile_model(model: keras.Model, options: PriceOptions, steps_per_epoch: int = 1) -> None:
    """Adam (AdamW with a weight decay) under the chosen schedule, gradient clipping and loss."""
    schedule = learning_rate_schedule(options.schedule, options.learning_rate, options.epochs, steps_per_epoch,
                                      options.warmup_epochs)
    clip = {"clipnorm": options.clipnorm} if options.clipnorm else {}
    optimizer = (keras.optimizers.AdamW(schedule, weight_decay=options.weight_decay, **clip) if options.weight_decay
                 else keras.optimizers.Adam(schedule, **clip))
    model.compile(optimizer=optimizer, loss=LOSSES[options.loss])


def train_model(train_path: Path, encoders: dict, options: PriceOptions, folder: Path,
                log: logging.Logger | logging.LoggerAdapter | None = None,
                report: EpochHook | None = None, rows: np.ndarray | None = None,
                member_folder: Callable[[PriceOptions], Path] | None = None) -> TrainResult:
    """Train (or resume) into `folder`; the best model ends as folder/model.keras.
    `rows` restricts training (and its validation share) to those rows of the train split.
    With `options.ensemble` N > 1, N members train (and resume) with seeds SEED + I, in folder/member-I
    or `member_folder(member options)` (a training of a seed already there is reused), and folder/model.keras
    is their average (the pipeline's tasks cache each member as a training of its own)."""
    log = log or logging.getLogger(__name__)
    report = report or (lambda epoch, epochs, logs: None)
    if options.ensemble == 1:
        return _train_one(train_path, encoders, options, folder, log, report, rows)
    member_folder = member_folder or (lambda member: folder / f"member-{member.seed - options.seed}")
    members = []
    for i, member in enumerate(member_options(options)):
        log.info("Ensemble member %d/%d (seed %d)", i + 1, options.ensemble, member.seed)
        members.append(_train_one(train_path, encoders, member, member_folder(member), log, report, rows))
    return assemble_ensemble([m.model_path for m in members], [m.summary() for m in members], folder)


def member_options(options: PriceOptions) -> list[PriceOptions]:
    """The single models of an ensemble: the same options with seeds SEED, SEED + 1, ..."""
    return [options.model_copy(update={"seed": options.seed + i, "ensemble": 1}) for i in range(options.ensemble)]


def assemble_ensemble(model_paths: list[Path], summaries: list[dict], folder: Path) -> TrainResult:
    """folder/model.keras averaging the members' models; its summary from theirs (done.json's fields)."""
    folder.mkdir(parents=True, exist_ok=True)
    ensemble = models.build_ensemble([load_keras_model(path, "ensemble member") for path in model_paths])
    save_model_file(ensemble, folder / "model.keras")
    first = summaries[0]
    return TrainResult(folder / "model.keras", _mean_history([s["history"] for s in summaries]),
                       max(s["epochs_run"] for s in summaries), first["best_epoch"],
                       sum(s["seconds"] for s in summaries), first["n_train"], first["n_validation"],
                       first["replicas"], min(s["resumed_from_epoch"] for s in summaries))


def _mean_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-epoch mean over the members (as long as the shortest member's, when early stopping differed)."""
    return {name: np.mean([h[name][:min(len(h[name]) for h in histories)] for h in histories], axis=0).tolist()
            for name in histories[0] if all(name in h for h in histories)}


def _train_one(train_path: Path, encoders: dict, options: PriceOptions, folder: Path,
               log: logging.Logger | logging.LoggerAdapter, report: EpochHook, rows: np.ndarray | None) -> TrainResult:
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options.seed)
    tf.config.experimental.enable_op_determinism()
    scale = TargetScale(options.target, encoders["price_max"])
    rows = np.arange(split_rows(train_path)) if rows is None else np.asarray(rows)
    groups = read_split(train_path, ("group",))["group"][rows]  # a duplicate group stays on one side
    fit_pos, val_pos = grouped_holdout_rows(len(rows), options.validation_fraction, options.seed, groups)
    fit_rows, val_rows = rows[fit_pos], rows[val_pos]
    if options.trainer == "stream":  # batches come from the file; only the targets are held here
        targets = scale.to_target(train_prices(train_path))
        x, y, xv, yv = None, targets[fit_rows], None, targets[val_rows]
    else:
        x, y, _ = load_arrays(train_path, options.strategy, scale, fit_rows)
        xv, yv, _ = load_arrays(train_path, options.strategy, scale, val_rows)
    side = encoders["tile_size"] * 2
    n_features = len(encoders["feature_names"])

    def build(replicas: int) -> keras.Model:
        model = build_model(options, n_features, side, float(np.mean(y)))
        compile_model(model, options, steps_per_epoch=math.ceil(len(fit_rows) / (options.batch_size * replicas)))
        return model

    def stream(batch_size: int, validation: bool = False) -> tf.data.Dataset:
        if validation:
            return chunk_stream(lambda: iter_batches(train_path, options.strategy, scale, rows=val_rows),
                                len(val_rows), batch_size, options.seed, shuffle=False)
        # Augmentation lives in the model (tasks.price.models.ImageRecipe): the same for every trainer.
        return chunk_stream(lambda: iter_batches(train_path, options.strategy, scale, rows=fit_rows), len(fit_rows),
                            batch_size, options.seed, buffer_rows=4096)

    return run_trainer(build, FitData(x, y, xv, yv, stream), options, folder, log, report)


def predict_prices(model: keras.Model, path: Path, strategy: str, scale: TargetScale,
                   rows: np.ndarray | None = None, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(actual prices, predicted prices) for the rows of a split, read and predicted chunk by chunk (memory does
    not grow with the split)."""
    actual, predicted = [], []
    for x in iter_split(path, (*STRATEGY_INPUTS[strategy], "price"), chunk_rows=4 * batch_size, rows=rows):
        actual.append(x.pop("price"))
        predicted.append(scale.to_price(model.predict(x, batch_size=batch_size, verbose=0)))
    if not actual:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(actual), np.concatenate(predicted)
