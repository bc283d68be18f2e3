"""The trainer engine every Keras model family uses: build (under the trainer's distribution scope),
resume from a checkpoint, train under a trainer, keep the best (or last) weights as model.keras.

Trainers: "fit" (arrays in memory, model.fit), "stream" (a tf.data stream from the caller,
shuffled, optionally augmented, prefetched), "batch" (a manual train_on_batch loop driving the same
callbacks), "distributed" (tf.distribute: MirroredStrategy over the visible GPUs or logical CPUs,
MultiWorkerMirroredStrategy when TF_CONFIG names several workers).

Every epoch ends with one checkpoint file written atomically into the run's work folder,
`checkpoint.npz`: the model's and the optimizer's variables, the best weights so far (with early
stopping) and the state (epoch, history, early-stopping counters) as JSON bytes, all read back
without pickle. One file and one rename: a kill can never pair one epoch's weights with another's
counter. A killed run started again rebuilds the model, restores it and resumes after the last
finished epoch. Arrays rather than a `.keras` file per epoch: saving a `.keras` costs ~40 ms, more
than a small model's epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tasks.core import interrupt
from tasks.core.errors import DataError, TimeLimitReached
from tasks.core.files import atomic_path
from tasks.training.options import TrainerOptions

EpochHook = Callable[[int, int, dict], None]
CHECKPOINT = "checkpoint.npz"


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


@dataclass
class Checkpoint:
    """One epoch's end: weights, optimizer variables, the best weights so far and the state."""

    state: dict
    weights: list[np.ndarray] = field(default_factory=list)
    optimizer: list[np.ndarray] = field(default_factory=list)
    best: list[np.ndarray] = field(default_factory=list)

    @staticmethod
    def fresh() -> Checkpoint:
        return Checkpoint({"epoch": 0, "history": {}, "best_loss": float("inf"), "best_epoch": 0, "wait": 0})

    def save(self, path: Path) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(self.weights)} | {f"o{i}": v for i, v in enumerate(self.optimizer)}
        arrays |= {f"b{i}": w for i, w in enumerate(self.best)}
        arrays["state"] = np.frombuffer(json.dumps(self.state).encode(), np.uint8)
        arrays["sha256"] = np.frombuffer(_arrays_sha256(arrays).encode(), np.uint8)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:  # np.savez on a handle: no ".npz" appended to the name
                np.savez(handle, **arrays)

    @staticmethod
    def load(path: Path) -> Checkpoint:
        """The checkpoint in `path`; a DamagedCheckpoint if any byte of it is not as it was written."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            if arrays.pop("sha256").tobytes().decode() != _arrays_sha256(arrays):
                raise ValueError("sha256 of its arrays differs")
            state = json.loads(arrays["state"].tobytes())
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as error:
            raise DamagedCheckpoint(f"{path}: {type(error).__name__}: {error}") from None

        def group(prefix: str) -> list[np.ndarray]:
            count = sum(k[0] == prefix and k[1:].isdigit() for k in arrays)
            return [arrays[f"{prefix}{i}"] for i in range(count)]

        return Checkpoint(state, group("w"), group("o"), group("b"))


class DamagedCheckpoint(Exception):
    """A checkpoint file that cannot be trusted (truncated, a byte changed, not a checkpoint)."""


def _arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(str(arrays[name].dtype).encode() + str(arrays[name].shape).encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


class EpochCheckpoint(keras.callbacks.Callback):
    """Checkpoint, early stopping and per-epoch reporting, with state that survives a restart."""

    def __init__(self, folder: Path, checkpoint: Checkpoint, patience: int | None, report: EpochHook, epochs: int):
        super().__init__()
        self.folder, self.checkpoint, self.patience, self.report, self.epochs = (folder, checkpoint, patience,
                                                                                 report, epochs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {k: float(v) for k, v in (logs or {}).items()}
        state = self.checkpoint.state
        for name, value in logs.items():
            state["history"].setdefault(name, []).append(value)
        monitored = logs.get("val_loss", logs.get("loss"))
        weights = self.model.get_weights()
        if monitored is not None and monitored < state["best_loss"]:
            state.update(best_loss=monitored, best_epoch=epoch + 1, wait=0)
            if self.patience is not None:  # early stopping keeps the best weights, not the last
                self.checkpoint.best = weights
        else:
            state["wait"] += 1
        state["epoch"] = epoch + 1
        self.checkpoint.weights = weights
        self.checkpoint.optimizer = [v.numpy() for v in self.model.optimizer.variables]
        self.checkpoint.save(self.folder / CHECKPOINT)
        self.report(epoch + 1, self.epochs, logs)
        if self.patience is not None and state["wait"] >= self.patience:
            self.model.stop_training = True


class Deadline(keras.callbacks.Callback):
    """Stops a training at its time limit, or when the run is interrupted (Ctrl-C, SIGTERM), after the current
    batch, wherever the training runs (main thread, a task runner's thread, a Dask worker): Prefect's own
    timeout cannot interrupt work outside the main thread. The checkpoint of the last finished epoch stays,
    so a re-run resumes from it."""

    def __init__(self, seconds: float | None, checkpoint: Checkpoint):
        super().__init__()
        self.seconds, self.checkpoint = seconds, checkpoint
        self.ends = time.monotonic() + seconds if seconds else None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        interrupt.check()
        if self.ends is not None and time.monotonic() > self.ends:
            raise TimeLimitReached(f"the time limit of {self.seconds:g} s (--time-limit) was reached after epoch "
                                   f"{self.checkpoint.state['epoch']}; run again to resume from that epoch")


def save_model_file(model: keras.Model, path: Path) -> Path:
    with atomic_path(path) as tmp:  # keeps the .keras suffix Keras asks for
        model.save(tmp)
    return path


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


def take_rows(data, rows: np.ndarray):
    """Rows of an array, or of each array of a dict (inputs by name, targets by output name)."""
    return {k: v[rows] for k, v in data.items()} if isinstance(data, dict) else data[rows]


def count_rows(data) -> int:
    return len(next(iter(data.values()))) if isinstance(data, dict) else len(data)


def _first_loss(value) -> float:
    """The total loss: train_on_batch/evaluate give [total, per output...] for several outputs."""
    return float(np.asarray(value).reshape(-1)[0])


def _run_batch_loop(model: keras.Model, x: dict, y, xv: dict, yv, options: TrainerOptions, start: int,
                    callback_list: list[keras.callbacks.Callback]) -> None:
    callbacks = keras.callbacks.CallbackList(callback_list, model=model)
    rng = np.random.default_rng(options.seed + start)
    n = count_rows(y)
    callbacks.on_train_begin()
    for epoch in range(start, options.epochs):
        callbacks.on_epoch_begin(epoch)
        order = rng.permutation(n)
        total = 0.0
        for begin in range(0, n, options.batch_size):
            rows = order[begin:begin + options.batch_size]
            total += _first_loss(model.train_on_batch(take_rows(x, rows), take_rows(y, rows))) * len(rows)
            callbacks.on_train_batch_end(begin // options.batch_size)
        logs = {"loss": total / n}
        if count_rows(yv):
            logs["val_loss"] = _first_loss(model.evaluate(xv, yv, batch_size=options.batch_size, verbose=0))
        callbacks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callbacks.on_train_end()


@dataclass
class FitData:
    """What a trainer needs: arrays (fit/batch/distributed) or a stream factory (stream), and validation.
    With the stream trainer `x` and `x_val` are None; `y` and `y_val` still give the rows (their count)."""

    x: dict | None
    y: np.ndarray | dict
    x_val: dict
    y_val: np.ndarray | dict
    # global batch size -> batches; with x_val None also (global batch size, validation=True) -> validation batches
    stream: Callable[..., tf.data.Dataset] | None = None


def trusted_checkpoint(path: Path, log: logging.Logger | logging.LoggerAdapter) -> Checkpoint | None:
    """The checkpoint in `path` if there is one to trust; a damaged one is reported and removed."""
    if not path.is_file():
        return None
    try:
        return Checkpoint.load(path)
    except DamagedCheckpoint as error:
        log.warning("The checkpoint is damaged (%s): removed, this training starts over", error)
        path.unlink(missing_ok=True)
        return None


def restore(model: keras.Model, checkpoint: Checkpoint) -> None:
    """The checkpoint's weights and optimizer variables into `model` (ValueError if they do not fit)."""
    model.set_weights(checkpoint.weights)
    model.optimizer.build(model.trainable_variables)
    if len(model.optimizer.variables) != len(checkpoint.optimizer):
        raise ValueError(f"{len(checkpoint.optimizer)} optimizer variables saved, the model has "
                         f"{len(model.optimizer.variables)}")
    for variable, value in zip(model.optimizer.variables, checkpoint.optimizer, strict=True):
        variable.assign(value)


def _stopped_early(state: dict, options: TrainerOptions) -> bool:
    return options.early_stopping is not None and state["wait"] >= options.early_stopping


def run_trainer(build: Callable[[int], keras.Model], data: FitData, options: TrainerOptions, folder: Path,
                log: logging.Logger | logging.LoggerAdapter, report: EpochHook) -> TrainResult:
    """Build (under the trainer's distribution scope), restore a checkpoint if any, train under
    `options.trainer` and save the best (or last) weights as folder/model.keras. `build(replicas)`
    returns a compiled model."""
    distribution = pick_distribution(log) if options.trainer == "distributed" else tf.distribute.get_strategy()
    replicas = distribution.num_replicas_in_sync
    batch_size = options.batch_size * replicas
    checkpoint = trusted_checkpoint(folder / CHECKPOINT, log)
    with distribution.scope():
        model = build(replicas)
        if checkpoint is not None:
            try:
                restore(model, checkpoint)
            except ValueError as error:  # verified, yet not this model's: a file from elsewhere
                raise DataError(f"this checkpoint does not fit the model ({error}); delete the folder to train "
                                "again", folder / CHECKPOINT) from None
            log.info("Resuming from the checkpoint after epoch %d of %d", checkpoint.state["epoch"], options.epochs)
        else:
            checkpoint = Checkpoint.fresh()
    state = checkpoint.state
    resumed_from = state["epoch"]
    callback = EpochCheckpoint(folder, checkpoint, options.early_stopping, report, options.epochs)
    started = time.perf_counter()
    x, y, xv, yv = data.x, data.y, data.x_val, data.y_val
    if state["epoch"] < options.epochs and not _stopped_early(state, options):
        validation = (xv, yv) if count_rows(yv) else None
        callbacks = [callback, Deadline(options.time_limit, checkpoint)]
        common = dict(epochs=options.epochs, initial_epoch=state["epoch"], callbacks=callbacks, verbose=0)
        if options.trainer == "fit":
            model.fit(x, y, batch_size=batch_size, shuffle=True, validation_data=validation, **common)
        elif options.trainer == "stream":  # validation batches streamed too: nothing grows with the data
            if validation is not None and xv is None:
                validation = data.stream(batch_size, validation=True)
            model.fit(data.stream(batch_size), validation_data=validation, **common)
        elif options.trainer == "batch":
            _run_batch_loop(model, x, y, xv, yv, options, state["epoch"], callbacks)
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
    if checkpoint.best:
        model.set_weights(checkpoint.best)
    save_model_file(model, folder / "model.keras")
    return TrainResult(folder / "model.keras", state["history"], state["epoch"], state["best_epoch"], seconds,
                       count_rows(y), count_rows(yv), replicas, resumed_from)
