"""Training runs seen from Prefect: per-epoch progress (log line and progress artifact), and reuse of
a finished training in its work folder instead of training again."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from tasks.core import storage
from tasks.core.files import atomic_write_json
from tasks.core.hashing import file_sha256
from tasks.core.locks import exclusive
from tasks.training.engine import CHECKPOINT, Checkpoint, DamagedCheckpoint, EpochHook, TrainResult


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
    (None, why not): an unreadable done.json, a missing or changed file. (None, None): not finished.
    A training in a remote cache's mirror is first brought from the store (`pull`)."""
    folder = storage.localized(folder)
    if storage.remote_of(folder) is not None:
        pull(folder, logging.getLogger(__name__))
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


def pull(folder: Path, log: logging.Logger | logging.LoggerAdapter) -> None:
    """From a remote cache: the finished training (its files and done.json, verified), else its latest
    checkpoint when it is further along than the one in the mirror."""
    remote = storage.remote_of(folder)
    manifest, problem = storage.fetch_committed(remote, folder, storage.MANIFEST)
    if manifest is not None:
        atomic_write_json(folder / "done.json", manifest["summary"])
        return
    if problem is not None:
        log.warning("The trained model %s in the store is damaged (%s): it is trained again", folder.name[:12], problem)
    (folder / "done.json").unlink(missing_ok=True)  # nothing finished in the store: the mirror's is not an entry
    data = storage.read_bytes(storage.join(remote, CHECKPOINT))
    if data is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    fetched = folder / f".{CHECKPOINT}.remote"
    fetched.write_bytes(data)
    try:
        theirs = Checkpoint.load(fetched).state["epoch"]
    except DamagedCheckpoint:
        fetched.unlink()
        return
    try:
        ours = Checkpoint.load(folder / CHECKPOINT).state["epoch"] if (folder / CHECKPOINT).is_file() else -1
    except DamagedCheckpoint:
        ours = -1
    if theirs > ours:
        os.replace(fetched, folder / CHECKPOINT)
        log.info("Took the checkpoint of epoch %d from the store", theirs)
    else:
        fetched.unlink()


def _commit(folder: Path, summary: dict, log: logging.Logger | logging.LoggerAdapter) -> None:
    """A finished training into a remote cache: its files, then its listing (the first writer wins)."""
    files = {name: {"size": (folder / name).stat().st_size, "sha256": sha256} for name, sha256 in
             summary["files"].items()}
    if not storage.commit(folder, storage.remote_of(folder), files, {"summary": summary}):
        log.info("Another run committed the same training first: using that one")
        pull(folder, log)


@contextlib.contextmanager
def _checkpoints_to_the_store(folder: Path) -> Iterator[None]:
    """While a training runs in a remote cache's mirror, its checkpoint goes to the store every
    HOUSE_PIPELINE_CHECKPOINT_SECONDS (30), so another machine can resume it."""
    remote = storage.remote_of(folder)
    if remote is None:
        yield
        return
    every = float(os.environ.get("HOUSE_PIPELINE_CHECKPOINT_SECONDS", "30"))
    stop, sent = threading.Event(), [0.0]

    def send() -> None:
        path = folder / CHECKPOINT
        if path.is_file() and path.stat().st_mtime != sent[0]:
            stamp = path.stat().st_mtime
            fs, target = storage.filesystem(storage.join(remote, CHECKPOINT))
            fs.pipe_file(target, path.read_bytes())
            sent[0] = stamp

    def loop() -> None:
        while not stop.wait(every):
            try:
                send()
            except Exception:  # noqa: BLE001 - the next round tries again; the local checkpoint is kept
                logging.getLogger(__name__).warning("Could not send the checkpoint to the store", exc_info=True)

    thread = threading.Thread(target=loop, name="checkpoint-upload", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def reuse_or_train(folder: Path, what: str, run: Callable[[], TrainResult],
                   log: logging.Logger | logging.LoggerAdapter, refresh: bool = False) -> tuple[Path, dict]:
    """(work folder, done.json): a finished training in `folder` is reused once its model is verified;
    otherwise `run()` trains (or resumes from the folder's checkpoint) and done.json records it, with
    the model's sha256. One run at a time per folder: a second run on the same work waits for the first.
    `refresh` (--refresh-cache): the folder is emptied first, so training starts again from epoch 1.
    In a remote cache the lock is a lease, the checkpoint goes to the store as the training runs, and the
    finished training is committed there (files first, its listing last)."""
    folder = storage.localized(folder)
    remote = storage.remote_of(folder)
    lock = folder.parent.parent / "locks" / f"{folder.parent.name}-{folder.name}.lock"  # CACHE/locks/STAGE-KEY.lock
    with exclusive(lock, f"the {what} {folder.name[:12]}", log):
        if refresh and folder.exists():
            log.info("Training the %s %s again from the start (--refresh-cache)", what, folder.name[:12])
            shutil.rmtree(folder)
        if refresh and remote is not None:
            storage.forget(remote)
            storage.remove([storage.join(remote, CHECKPOINT)] if storage.read_bytes(
                storage.join(remote, CHECKPOINT)) is not None else [])
        summary, damage = finished_training(folder)
        if summary is not None:
            log.info("Reusing the trained %s %s (same data, options and code)", what, folder.name[:12])
            return folder, summary
        if damage is not None:
            log.warning("The trained %s %s is damaged (%s): it is trained again from its checkpoint", what,
                        folder.name[:12], damage)
            (folder / "done.json").unlink(missing_ok=True)
            (folder / "model.keras").unlink(missing_ok=True)
        with _checkpoints_to_the_store(folder):
            summary = run().summary() | {"files": result_files(folder)}
        atomic_write_json(folder / "done.json", summary)
        if remote is not None:
            _commit(folder, summary, log)
            summary = json.loads((folder / "done.json").read_text())
        return folder, summary
