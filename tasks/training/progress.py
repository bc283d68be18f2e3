"""Training runs seen from Prefect: per-epoch progress (log line and progress artifact), and reuse of
a finished training in its work folder instead of training again."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from tasks.core.files import atomic_write_json
from tasks.training.engine import EpochHook, TrainResult


def progress_reporter(log: logging.Logger | logging.LoggerAdapter, artifact_key: str | None) -> EpochHook:
    """A per-epoch hook: one log line with the epoch's metrics; the progress artifact moves if given."""
    from prefect.artifacts import create_progress_artifact, update_progress_artifact

    artifact_id = create_progress_artifact(0.0, key=artifact_key, description="Training progress (% of epochs)") \
        if artifact_key else None

    def report(epoch: int, epochs: int, logs: dict) -> None:
        shown = ", ".join(f"{name} {value:.4f}" for name, value in logs.items())
        log.info("Epoch %d/%d: %s", epoch, epochs, shown)
        if artifact_id is not None:
            update_progress_artifact(artifact_id, progress=100.0 * epoch / epochs)

    return report


def reuse_or_train(folder: Path, what: str, run: Callable[[], TrainResult],
                   log: logging.Logger | logging.LoggerAdapter) -> tuple[Path, dict]:
    """(work folder, done.json): a finished training in `folder` is reused; otherwise `run()` trains
    (or resumes from the folder's checkpoint) and done.json records it."""
    done = folder / "done.json"
    if done.is_file() and (folder / "model.keras").is_file():
        log.info("Reusing the trained %s %s (same data, options and code)", what, folder.name[:12])
        return folder, json.loads(done.read_text())
    summary = run().summary()
    atomic_write_json(done, summary)
    return folder, summary
