"""One run at a time on a piece of expensive work: a second run on the same training waits, then reuses it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from tasks.training.engine import TrainResult
from tasks.training.progress import reuse_or_train


def test_two_runs_on_one_training_one_trains_and_the_other_reuses_its_model(tmp_path: Path, caplog):
    folder = tmp_path / "cache" / "train" / "KEY"
    trained: list[str] = []

    def train() -> TrainResult:
        trained.append(threading.current_thread().name)
        time.sleep(0.5)  # long enough for the other run to arrive meanwhile
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.keras").write_bytes(b"the one model")
        return TrainResult(folder / "model.keras", {"loss": [1.0]}, 1, 1, 0.5, 3, 0, 1, 0)

    results = {}

    def run(name: str) -> None:
        results[name] = reuse_or_train(folder, "model", train, logging.getLogger("test"))

    threads = [threading.Thread(target=run, args=(name,), name=name) for name in ("first", "second")]
    with caplog.at_level(logging.INFO, logger="test"):
        for thread in threads:
            thread.start()
            time.sleep(0.1)
        for thread in threads:
            thread.join(30)
    assert trained == ["first"]  # the second run waited for the first and did not train again
    assert results["first"] == results["second"] and results["second"][1]["files"]["model.keras"]
    assert "Another run is computing the model KEY; waiting for it to finish" in caplog.text
    assert "Reusing the trained model KEY" in caplog.text
