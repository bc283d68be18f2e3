"""Training runs seen from Prefect: per-epoch progress (log line and progress artifact), and reuse of
a finished training in its work folder instead of training again."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from tasks.core.files import atomic_write_json
from tasks.core.hashing import file_sha256
from tasks.core.locks import exclusive
from tasks.training.engine import CHECKPOINT, EpochHook, TrainResult


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


def result_files(folder: Path) -> dict[str, str]:
    """{name: sha256} of what a finished training leaves for its users (the model and its companions)."""
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.name not in (CHECKPOINT, "done.json")}


def finished_training(folder: Path) -> tuple[dict | None, str | None]:
    """(done.json, None) if the training in `folder` finished and its files are as they were saved, else
    (None, why not): an unreadable done.json, a missing or changed file. (None, None): not finished."""
    done = folder / "done.json"
    if not done.is_file():
        return None, None
    try:
        summary = json.loads(done.read_text())
        expected = dict(summary["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, "done.json is unreadable"
    if "model.keras" not in expected:
        return None, "done.json lists no model.keras"
    for name, sha256 in expected.items():
        if not (folder / name).is_file():
            return None, f"{name} is missing"
        if file_sha256(folder / name) != sha256:
            return None, f"{name} changed since it was saved (sha256 differs)"
    return summary, None


def reuse_or_train(folder: Path, what: str, run: Callable[[], TrainResult],
                   log: logging.Logger | logging.LoggerAdapter, refresh: bool = False) -> tuple[Path, dict]:
    """(work folder, done.json): a finished training in `folder` is reused once its model is verified;
    otherwise `run()` trains (or resumes from the folder's checkpoint) and done.json records it, with
    the model's sha256. One run at a time per folder: a second run on the same work waits for the first.
    `refresh` (--refresh-cache): the folder is emptied first, so training starts again from epoch 1."""
    lock = folder.parent.parent / "locks" / f"{folder.parent.name}-{folder.name}.lock"  # CACHE/locks/STAGE-KEY.lock
    with exclusive(lock, f"the {what} {folder.name[:12]}", log):
        if refresh and folder.exists():
            log.info("Training the %s %s again from the start (--refresh-cache)", what, folder.name[:12])
            shutil.rmtree(folder)
        summary, damage = finished_training(folder)
        if summary is not None:
            log.info("Reusing the trained %s %s (same data, options and code)", what, folder.name[:12])
            return folder, summary
        if damage is not None:
            log.warning("The trained %s %s is damaged (%s): it is trained again from its checkpoint", what,
                        folder.name[:12], damage)
            (folder / "done.json").unlink(missing_ok=True)
            (folder / "model.keras").unlink(missing_ok=True)
        summary = run().summary() | {"files": result_files(folder)}
        atomic_write_json(folder / "done.json", summary)
        return folder, summary
