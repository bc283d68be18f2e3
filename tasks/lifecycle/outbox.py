"""Records that wait for the tracking store: when MLflow stops answering during a run (or `--tracking
optional` found it unreachable at the start), the run's trained model and files are kept as usual, and
what its record needs waits here, under the state folder (`.house-pipeline/tracking-outbox/ENTRY/`):

- `entry.json`: the tracking URI, experiment, run name, parameters, metrics, per-epoch history, tags, the
  MLflow run id once the record is written, and, for a price model, what its gate compares;
- `files/`: copies of the run's report, plots and data profile (the run folder may be replaced meanwhile);
- `model/` and `test.parquet`: the price model to register and the test houses its gate compares on.

An entry is written whole (a temporary folder renamed into place) and removed once replayed: the record,
then the registration and the gate (`replay`), by `house-pipeline models registry sync` or at the start of
the next tracked run's record. Entries replay in the order they were made.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tasks.core.faults import writing
from tasks.core.files import atomic_write_json, replacing_folder
from tasks.core.state import state_dir
from tasks.lifecycle import tracking
from tasks.lifecycle.promotion import register_and_gate
from tasks.lifecycle.tracking import Tracking, TrackingUnavailable

ENTRY = "entry.json"


def folder() -> Path:
    return state_dir() / "tracking-outbox"


def entries(uri: str | None = None) -> list[Path]:
    """Waiting entries, oldest first (only those for `uri` when given)."""
    found = sorted(p for p in folder().glob("*/") if not p.name.startswith(".") and (p / ENTRY).is_file()) \
        if folder().is_dir() else []
    return [p for p in found if uri is None or read(p)["uri"] == uri]


def read(entry: Path) -> dict:
    return json.loads((entry / ENTRY).read_text())


def made_by_this_process() -> list[dict]:
    """The entries this process left waiting (what the command line reports at its end)."""
    return [data for data in map(read, entries()) if data["pid"] == os.getpid()]


def defer(tracker: Tracking, reason: str, experiment: str, run_name: str, params: dict, metrics: dict,
          history: dict, tags: dict, artifacts: dict[str, Path], run_id: str | None = None,
          partial_run: str | None = None, gate: dict | None = None, model_dir: Path | None = None,
          test_path: Path | None = None) -> Path:
    """Keep a record (and, with `gate`, its registration and gate) for later; the entry's folder."""
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    target = folder() / name
    with writing(f"the tracking outbox {folder()}", folder()):
        folder().mkdir(parents=True, exist_ok=True)
        with replacing_folder(target) as tmp:
            copied = {}
            for index, (artifact, path) in enumerate(artifacts.items()):
                if path.exists():
                    copy = Path("files") / str(index) / path.name
                    (tmp / copy).parent.mkdir(parents=True)
                    (shutil.copytree if path.is_dir() else shutil.copy2)(path, tmp / copy)
                    copied[artifact] = str(copy)
            if model_dir is not None:
                shutil.copytree(model_dir, tmp / "model")
            if test_path is not None:
                shutil.copy2(test_path, tmp / "test.parquet")
            atomic_write_json(tmp / ENTRY, {
                "uri": tracker.uri, "mode": tracker.mode, "reason": reason, "pid": os.getpid(),
                "created": datetime.now(UTC).isoformat(timespec="seconds"), "experiment": experiment,
                "run_name": run_name, "params": params, "metrics": metrics, "history": history, "tags": tags,
                "artifacts": copied, "run_id": run_id, "partial_run": partial_run, "gate": gate})
    return target


def add_gate(entry: Path, gate: dict, model_dir: Path, test_path: Path) -> None:
    """The registration and gate of the record waiting in `entry` wait with it."""
    data = read(entry)
    shutil.copytree(model_dir, entry / "model", dirs_exist_ok=True)
    shutil.copy2(test_path, entry / "test.parquet")
    atomic_write_json(entry / ENTRY, {**data, "gate": gate})


def replay(tracker: Tracking, entry: Path, log: logging.Logger | logging.LoggerAdapter) -> dict:
    """Write one waiting entry (record, then registration and gate) and remove it; what was done.
    `TrackingUnavailable` when the store still does not answer (the entry stays, with any progress)."""
    data = read(entry)
    if data["run_id"] is None:
        if data["partial_run"]:  # created before the store went away, half-written
            try:
                tracker.client().delete_run(data["partial_run"])
            except Exception as error:  # noqa: BLE001 - already gone, or deleted by hand
                if tracking.unavailable(error):
                    raise TrackingUnavailable(tracking.unavailable(error)) from error
        artifacts = {name: entry / path for name, path in data["artifacts"].items()}
        data["run_id"] = tracking.log_run(tracker, data["experiment"], data["run_name"], data["params"],
                                          data["metrics"], data["history"], data["tags"], artifacts)
        atomic_write_json(entry / ENTRY, {**data, "partial_run": None})  # a failed gate does not log it twice
    done = {"run_name": data["run_name"], "experiment": data["experiment"], "run_id": data["run_id"],
            "verdict": None}
    if data["gate"] is not None:
        gate = data["gate"]
        done["verdict"] = register_and_gate(tracker, data["run_id"], entry / "model", entry / "test.parquet",
                                            gate["metrics"], gate["drift"], gate["tolerance"], gate["tags"], log)
    shutil.rmtree(entry, ignore_errors=True)
    return done


def sync(tracker: Tracking, log: logging.Logger | logging.LoggerAdapter) -> list[dict]:
    """Replay every entry waiting for this tracking store, oldest first; stops at the first that still cannot
    be written (`TrackingUnavailable`)."""
    return [replay(tracker, entry, log) for entry in entries(tracker.uri)]
