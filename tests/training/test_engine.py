"""The trainer engine's checkpoint: one file, one atomic step, whatever moment a run is killed at."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tasks.price.options import PriceOptions
from tasks.price.train import train_model
from tasks.training.engine import CHECKPOINT, Checkpoint
from tests.fixtures import checkpoint_state as read_state
from tests.fixtures import make_houses, run_stages


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("engine")
    data = make_houses(folder / "houses", [90000 + n % 3 for n in range(24)], photo_size=(24, 20))
    return run_stages(data, folder / "cache", tile_size=8)[1]


class Killed(BaseException):
    """Stands for SIGKILL at one write: nothing after it runs (not even `except Exception`)."""


@pytest.mark.parametrize("kill_at", [2, 3, 4])
def test_a_kill_at_any_write_leaves_a_checkpoint_whose_weights_match_its_epoch(tiny, tmp_path, monkeypatch, kill_at):
    """Every rename is where a kill can split one step from the next. Whatever rename the kill lands on, the
    checkpoint's optimizer step count is epoch x steps per epoch: its weights and its counter are one epoch's."""
    options = PriceOptions(strategy="mlp", epochs=6, batch_size=4)
    renames, real_replace = [], os.replace

    def replace(src, dst):
        renames.append(dst)
        if len(renames) == kill_at:
            raise Killed(dst)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        train_model(tiny.train_path, tiny.encoders(), options, tmp_path / "work")
    monkeypatch.undo()
    checkpoint = Checkpoint.load(tmp_path / "work" / CHECKPOINT)
    steps_per_epoch = -(-tiny.n_train // options.batch_size)
    iterations = int(checkpoint.optimizer[0])  # Adam's first variable counts its steps
    assert checkpoint.state["epoch"] == kill_at - 1  # one rename per epoch, the killed one never happened
    assert iterations == checkpoint.state["epoch"] * steps_per_epoch
    assert len(checkpoint.state["history"]["loss"]) == checkpoint.state["epoch"]
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [CHECKPOINT]  # no half-written file left

    resumed = train_model(tiny.train_path, tiny.encoders(), options, tmp_path / "work")
    assert resumed.resumed_from_epoch == kill_at - 1 and resumed.epochs_run == 6
    assert len(resumed.history["loss"]) == 6 and read_state(tmp_path / "work")["epoch"] == 6


def test_early_stopping_keeps_the_best_weights_across_a_resume(tiny, tmp_path):
    options = PriceOptions(strategy="mlp", epochs=40, batch_size=4, learning_rate=0.3, early_stopping=2)
    result = train_model(tiny.train_path, tiny.encoders(), options, tmp_path / "work")
    checkpoint = Checkpoint.load(tmp_path / "work" / CHECKPOINT)
    assert result.best_epoch == result.epochs_run - 2 and checkpoint.best
    import keras

    saved = keras.models.load_model(result.model_path, safe_mode=True).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(saved, checkpoint.best, strict=True))


@pytest.mark.parametrize("trainer", ["fit", "batch"])
def test_a_stop_request_ends_a_training_in_any_thread_after_its_batch_keeping_the_last_epoch(tiny, tmp_path, trainer):
    """Ctrl-C reaches the main thread only: a training in a worker thread stops at the process's stop flag."""
    import threading

    from tasks.core import interrupt

    options = PriceOptions(strategy="mlp", epochs=100_000, batch_size=4, trainer=trainer)
    raised: list[BaseException] = []

    def train() -> None:
        try:
            train_model(tiny.train_path, tiny.encoders(), options, tmp_path / "work")
        except BaseException as error:  # noqa: BLE001 - what the thread ended with
            raised.append(error)

    worker = threading.Thread(target=train, daemon=True)
    worker.start()
    try:
        while (read_state(tmp_path / "work") or {"epoch": 0})["epoch"] < 2 and worker.is_alive():
            worker.join(0.05)
        interrupt.request_stop()
        worker.join(10)
    finally:
        interrupt.clear()
    assert not worker.is_alive() and isinstance(raised[0], interrupt.Interrupted)
    assert read_state(tmp_path / "work")["epoch"] >= 2  # the checkpoint of the last finished epoch stays


def test_a_training_stops_at_its_time_limit_and_says_after_which_epoch(tiny, tmp_path):
    import time

    from tasks.core.errors import TimeLimitReached

    options = PriceOptions(strategy="mlp", epochs=500, batch_size=4, time_limit=2.0)  # 500 epochs: half a minute
    started = time.monotonic()
    with pytest.raises(TimeLimitReached, match=r"the time limit of 2 s \(--time-limit\) was reached after epoch"):
        train_model(tiny.train_path, tiny.encoders(), options, tmp_path / "work")
    assert time.monotonic() - started < 15 and (read_state(tmp_path / "work") or {"epoch": 0})["epoch"] < 500
