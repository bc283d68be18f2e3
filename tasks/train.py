"""Training under a selected strategy (which inputs) and trainer (how batches reach the model).

Trainers: "fit" (arrays in memory, model.fit), "stream" (tf.data reading the Parquet split in
chunks, shuffled, optionally augmented, prefetched), "batch" (a manual train_on_batch loop
driving the same callbacks), "distributed" (tf.distribute: MirroredStrategy over the visible
GPUs or logical CPUs, MultiWorkerMirroredStrategy when TF_CONFIG names several workers).

Every epoch ends with a checkpoint written atomically into the run's work folder: the model's
and the optimizer's variables as arrays (`checkpoint.npz`, read back without pickle) and
`state.json` (epoch, history, early-stopping state). A killed run started again rebuilds the
model from its options, restores both and resumes after the last finished epoch. Arrays rather
than a `.keras` file per epoch: saving a `.keras` costs ~40 ms, more than a small model's epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import pyarrow.parquet as pq
import tensorflow as tf

from tasks import models
from tasks.cache import atomic_write_json
from tasks.training_data import STRATEGY_INPUTS, TargetScale, iter_batches, load_arrays
from tasks.training_options import TrainingOptions

LOSSES = {"mape": "mean_absolute_percentage_error", "mae": "mean_absolute_error",
          "mse": "mean_squared_error", "huber": "huber"}
EpochHook = Callable[[int, int, dict], None]


@dataclass
class TrainResult:
    model_path: Path
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    seconds: float
    n_train: int
    n_validation: int
    replicas: int
    resumed_from_epoch: int  # 0 when the run started fresh

    def summary(self) -> dict:
        """What done.json records: everything but the model's path."""
        return {k: v for k, v in asdict(self).items() if k != "model_path"}


def build_model(options: TrainingOptions, n_features: int, side: int, output_bias: float) -> keras.Model:
    shape = (side, side, 3)
    backbone = models.BackboneChoice(options.backbone, options.weights, options.fine_tune_layers)
    if options.strategy == "mlp":
        return models.build_mlp(n_features, tuple(options.hidden), output_bias)
    if options.strategy == "cnn":
        return models.build_cnn(shape, tuple(options.filters), tuple(options.dense), options.dropout, output_bias,
                                backbone)
    return models.build_mixed(n_features, shape, tuple(options.hidden), tuple(options.filters),
                              tuple(options.dense), options.dropout, output_bias=output_bias, backbone=backbone)


def compile_model(model: keras.Model, options: TrainingOptions) -> None:
    schedule = keras.optimizers.schedules.InverseTimeDecay(
        options.learning_rate, decay_steps=1, decay_rate=options.learning_rate / options.epochs)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=LOSSES[options.loss])


def validation_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows) by position in the train split, seeded."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class EpochCheckpoint(keras.callbacks.Callback):
    """Checkpoint, early stopping and per-epoch reporting, with state that survives a restart."""

    def __init__(self, folder: Path, state: dict, patience: int | None, report: EpochHook, epochs: int):
        super().__init__()
        self.folder, self.state, self.patience, self.report, self.epochs = folder, state, patience, report, epochs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        for name, value in logs.items():
            self.state["history"].setdefault(name, []).append(value)
        monitored = logs.get("val_loss", logs.get("loss"))
        if monitored is not None and monitored < self.state["best_loss"]:
            self.state.update(best_loss=monitored, best_epoch=epoch + 1, wait=0)
            if self.patience is not None:  # early stopping keeps the best weights, not the last
                save_arrays(self.folder / "best.npz", self.model.get_weights())
        else:
            self.state["wait"] += 1
        save_arrays(self.folder / "checkpoint.npz", self.model.get_weights(),
                    [v.numpy() for v in self.model.optimizer.variables])
        self.state["epoch"] = epoch + 1
        atomic_write_json(self.folder / "state.json", self.state)
        self.report(epoch + 1, self.epochs, logs)
        if self.patience is not None and self.state["wait"] >= self.patience:
            self.model.stop_training = True


def save_arrays(path: Path, weights: list[np.ndarray], optimizer: list[np.ndarray] | None = None) -> None:
    arrays = {f"w{i}": w for i, w in enumerate(weights)} | {f"o{i}": v for i, v in enumerate(optimizer or [])}
    tmp = path.with_name(f".{path.stem}-{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_arrays_file(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        weights = [data[f"w{i}"] for i in range(sum(k.startswith("w") for k in data.files))]
        optimizer = [data[f"o{i}"] for i in range(sum(k.startswith("o") for k in data.files))]
    return weights, optimizer


def save_model_file(model: keras.Model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}-{os.getpid()}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def _fresh_state() -> dict:
    return {"epoch": 0, "history": {}, "best_loss": float("inf"), "best_epoch": 0, "wait": 0}


def pick_distribution(log: logging.Logger | logging.LoggerAdapter) -> tf.distribute.Strategy:
    workers = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {}).get("worker", [])
    if len(workers) > 1:
        log.info("TF_CONFIG names %d workers: MultiWorkerMirroredStrategy", len(workers))
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        log.info("MirroredStrategy over %d GPU(s)", len(gpus))
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1:
        log.info("No GPU: MirroredStrategy over %d logical CPU devices", len(cpus))
    else:
        log.info("No GPU: MirroredStrategy over one CPU device (no speed-up; same code path as on GPUs)")
    return tf.distribute.MirroredStrategy([d.name for d in cpus])


def image_augmenter(kinds: list[str], seed: int) -> keras.Sequential | None:
    steps = {
        "rotation": lambda: keras.layers.RandomRotation(0.03, seed=seed),
        "zoom": lambda: keras.layers.RandomZoom(0.05, seed=seed),
        "shift": lambda: keras.layers.RandomTranslation(0.05, 0.05, seed=seed),
        "flip": lambda: keras.layers.RandomFlip("horizontal", seed=seed),
    }
    return keras.Sequential([steps[k]() for k in kinds], name="augment") if kinds else None


def make_stream(path: Path, strategy: str, scale: TargetScale, rows: np.ndarray, batch_size: int,
                seed: int, shuffle: bool, augment: list[str] | None = None, chunk_rows: int = 1024) -> tf.data.Dataset:
    """tf.data over the Parquet split: chunked reads, row shuffle buffer, batches, prefetch."""
    first_inputs, _ = next(iter_batches(path, strategy, scale, chunk_rows=1, rows=rows[:1]))
    signature = (
        {name: tf.TensorSpec((None, *first_inputs[name].shape[1:]), tf.float32) for name in STRATEGY_INPUTS[strategy]},
        tf.TensorSpec((None,), tf.float32),
    )
    data = tf.data.Dataset.from_generator(
        lambda: iter_batches(path, strategy, scale, chunk_rows=chunk_rows, rows=rows), output_signature=signature)
    data = data.unbatch()
    if shuffle:
        data = data.shuffle(min(len(rows), 4 * chunk_rows), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).apply(tf.data.experimental.assert_cardinality(math.ceil(len(rows) / batch_size)))
    augmenter = image_augmenter(augment or [], seed) if "montage" in STRATEGY_INPUTS[strategy] else None
    if augmenter is not None:
        data = data.map(lambda x, y: ({**x, "montage": augmenter(x["montage"], training=True)}, y),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def _rows_of(data, rows: np.ndarray):
    """Rows of an array, or of each array of a dict (inputs by name, targets by output name)."""
    return {k: v[rows] for k, v in data.items()} if isinstance(data, dict) else data[rows]


def count_rows(data) -> int:
    return len(next(iter(data.values()))) if isinstance(data, dict) else len(data)


def _first_loss(value) -> float:
    """The total loss: train_on_batch/evaluate give [total, per output...] for several outputs."""
    return float(np.asarray(value).reshape(-1)[0])


def _run_batch_loop(model: keras.Model, x: dict, y, xv: dict, yv, options, start: int,
                    callback: keras.callbacks.Callback) -> None:
    callbacks = keras.callbacks.CallbackList([callback], model=model)
    rng = np.random.default_rng(options.seed + start)
    n = count_rows(y)
    callbacks.on_train_begin()
    for epoch in range(start, options.epochs):
        callbacks.on_epoch_begin(epoch)
        order = rng.permutation(n)
        total = 0.0
        for begin in range(0, n, options.batch_size):
            rows = order[begin:begin + options.batch_size]
            total += _first_loss(model.train_on_batch(_rows_of(x, rows), _rows_of(y, rows))) * len(rows)
        logs = {"loss": total / n}
        if count_rows(yv):
            logs["val_loss"] = _first_loss(model.evaluate(xv, yv, batch_size=options.batch_size, verbose=0))
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end()


@dataclass
class FitData:
    """What a trainer needs: arrays (fit/batch/distributed) or a stream factory (stream), and validation."""

    x: dict | None
    y: np.ndarray | dict | None
    x_val: dict
    y_val: np.ndarray | dict
    stream: Callable[[int], tf.data.Dataset] | None = None  # global batch size -> batches


def run_trainer(build: Callable[[int], keras.Model], data: FitData, options, folder: Path,
                log: logging.Logger | logging.LoggerAdapter, report: EpochHook) -> TrainResult:
    """Build (under the trainer's distribution scope), restore a checkpoint if any, train under
    `options.trainer` and save the best (or last) weights as folder/model.keras. `build(replicas)`
    returns a compiled model; `options` carries trainer, epochs, batch_size, seed and early_stopping."""
    distribution = pick_distribution(log) if options.trainer == "distributed" else tf.distribute.get_strategy()
    replicas = distribution.num_replicas_in_sync
    batch_size = options.batch_size * replicas
    state_path, checkpoint = folder / "state.json", folder / "checkpoint.npz"
    with distribution.scope():
        model = build(replicas)
        state = _fresh_state()
        if state_path.is_file() and checkpoint.is_file():
            state = json.loads(state_path.read_text())
            weights, optimizer = load_arrays_file(checkpoint)
            model.set_weights(weights)
            model.optimizer.build(model.trainable_variables)
            for variable, value in zip(model.optimizer.variables, optimizer, strict=True):
                variable.assign(value)
            log.info("Resuming from the checkpoint after epoch %d of %d", state["epoch"], options.epochs)
    resumed_from = state["epoch"]
    callback = EpochCheckpoint(folder, state, options.early_stopping, report, options.epochs)
    started = time.perf_counter()
    x, y, xv, yv = data.x, data.y, data.x_val, data.y_val
    if state["epoch"] < options.epochs and not _stopped_early(state, options):
        validation = (xv, yv) if count_rows(yv) else None
        common = dict(epochs=options.epochs, initial_epoch=state["epoch"], callbacks=[callback], verbose=0)
        if options.trainer == "fit":
            model.fit(x, y, batch_size=batch_size, shuffle=True, validation_data=validation, **common)
        elif options.trainer == "stream":
            model.fit(data.stream(batch_size), validation_data=validation, **common)
        elif options.trainer == "batch":
            _run_batch_loop(model, x, y, xv, yv, options, state["epoch"], callback)
        else:
            # Whole global batches only: replicas must get equal shares (the last partial batch is dropped).
            batches = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(count_rows(y), seed=options.seed).batch(
                batch_size, drop_remainder=True)
            # Validation too: Keras 3.10 under MirroredStrategy fails on unequal per-replica shares.
            val_batch = min(batch_size, count_rows(yv) // replicas * replicas)
            val = tf.data.Dataset.from_tensor_slices((xv, yv)).batch(val_batch, drop_remainder=True) \
                if val_batch else None
            with distribution.scope():
                model.fit(batches, validation_data=val, **common)
    seconds = time.perf_counter() - started
    best = folder / "best.npz"
    if best.is_file():
        model.set_weights(load_arrays_file(best)[0])
    save_model_file(model, folder / "model.keras")
    return TrainResult(folder / "model.keras", state["history"], state["epoch"], state["best_epoch"], seconds,
                       count_rows(y), count_rows(yv), replicas, resumed_from)


def train_model(train_path: Path, encoders: dict, options: TrainingOptions, folder: Path,
                log: logging.Logger | logging.LoggerAdapter | None = None,
                report: EpochHook | None = None, rows: np.ndarray | None = None) -> TrainResult:
    """Train (or resume) into `folder`; the best model ends as folder/model.keras.
    `rows` restricts training (and its validation share) to those rows of the train split."""
    log = log or logging.getLogger(__name__)
    report = report or (lambda epoch, epochs, logs: None)
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options.seed)
    tf.config.experimental.enable_op_determinism()
    scale = TargetScale(options.target, encoders["price_max"])
    rows = np.arange(_row_count(train_path)) if rows is None else np.asarray(rows)
    fit_pos, val_pos = validation_rows(len(rows), options.validation_fraction, options.seed)
    fit_rows, val_rows = rows[fit_pos], rows[val_pos]
    if options.trainer == "stream":  # batches come from the file; only the targets' mean is needed here
        x, y = None, scale.to_target(_prices(train_path)[fit_rows])
    else:
        x, y, _ = load_arrays(train_path, options.strategy, scale, fit_rows)
    xv, yv, _ = load_arrays(train_path, options.strategy, scale, val_rows)
    side = encoders["tile_size"] * 2
    n_features = len(encoders["feature_names"])

    def build(replicas: int) -> keras.Model:
        model = build_model(options, n_features, side, float(np.mean(y)))
        compile_model(model, options)
        return model

    def stream(batch_size: int) -> tf.data.Dataset:
        return make_stream(train_path, options.strategy, scale, fit_rows, batch_size, options.seed,
                           shuffle=True, augment=options.augment)

    return run_trainer(build, FitData(x, y, xv, yv, stream), options, folder, log, report)


def _stopped_early(state: dict, options: TrainingOptions) -> bool:
    return options.early_stopping is not None and state["wait"] >= options.early_stopping


def _row_count(path: Path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def _prices(path: Path) -> np.ndarray:
    return pq.read_table(path, columns=["price"])["price"].to_numpy().astype(np.float64)


def predict_prices(model: keras.Model, path: Path, strategy: str, scale: TargetScale,
                   rows: np.ndarray | None = None, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(actual prices, predicted prices) for the rows of a split."""
    x, _, prices = load_arrays(path, strategy, scale, rows)
    return prices, scale.to_price(model.predict(x, batch_size=batch_size, verbose=0))


def kfold_rows(n: int, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds by house (one row per house): (train rows, held-out rows) for each fold."""
    order = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(order, k)
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(fold)) for i, fold in enumerate(folds)]
