"""Where experiment records go, and how a flow run becomes an MLflow run.

Store: `--tracking-uri`, else `MLFLOW_TRACKING_URI`, else a local SQLite database and artifact folder
under the project's state folder (`.house-pipeline/mlflow/`, created on first use). A shared
`mlflow server` is an `http://` URI. All calls go through an explicit `MlflowClient` (no global
active run), so runs logged from Prefect's worker threads do not mix.

A store that stops answering costs seconds, not minutes: MLflow's HTTP retries are bounded (`FAST_FAIL`,
unless the environment sets them), and a failure that means "unreachable" (`unavailable`) becomes
`TrackingUnavailable`, which the lifecycle tasks turn into a record waiting in the outbox.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tasks.core.errors import DataError
from tasks.core.state import state_dir

TrackingMode = Literal["required", "optional", "off"]
TRACKING_HINT = "start it (make mlflow-ui starts a local one), fix --tracking-uri, or pass --tracking optional"
# MLflow's defaults retry a dead server for minutes (7 retries, backoff factor 2, 120 s timeout): a few seconds.
FAST_FAIL = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
             "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
UNREACHABLE_SIGNS = ("Max retries exceeded", "Connection refused", "Failed to establish a new connection",
                     "Read timed out", "Connection aborted", "RemoteDisconnected", "disk I/O error",
                     "database is locked", "unable to open database file", "No space left on device")


class TrackingUnavailable(Exception):
    """The tracking store stopped answering (or could not be written) during a run. `partial_run`: the id of
    an MLflow run created before it went away (half-written; the outbox's replay deletes it)."""

    def __init__(self, reason: str, partial_run: str | None = None):
        self.reason, self.partial_run = reason, partial_run
        super().__init__(reason)


def unavailable(error: BaseException) -> str | None:
    """Why `error` means the store cannot be reached or written now (not a bug, not bad input), or None."""
    from tasks.core.faults import cause_chain

    for cause in cause_chain(error):
        if isinstance(cause, TrackingUnavailable):
            return cause.reason
        kind = type(cause).__module__.split(".")[0]
        text = str(cause)
        if kind in ("requests", "urllib3") or (kind in ("mlflow", "sqlalchemy", "sqlite3") and
                                               any(sign in text for sign in UNREACHABLE_SIGNS)):
            shown = next((sign for sign in UNREACHABLE_SIGNS if sign in text), type(cause).__name__)
            return f"{type(cause).__name__}: {shown}"
        if isinstance(cause, OSError) and "No space left on device" in text:
            return "No space left on device"
    return None


def fail_fast() -> None:
    """Bounded MLflow HTTP retries for this process, unless the environment chose its own."""
    for name, value in FAST_FAIL.items():
        os.environ.setdefault(name, value)
    import logging

    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # not a warning per retry


def local_store() -> Path:
    return (state_dir() / "mlflow").resolve()


def tracking_uri(given: str | None = None) -> str:
    """The tracking (and registry) URI this run uses."""
    uri = given or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{local_store() / 'mlflow.db'}"


def problem_with(uri: str, timeout: float = 10.0) -> str | None:
    """Why the store at `uri` cannot be used now, or None. Checked before any training."""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as answer:
                if answer.status == 200:
                    return None
                return f"the MLflow tracking server at {uri} answered HTTP {answer.status}"
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            return f"cannot reach the MLflow tracking server at {uri} ({reason})"
    if uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            return f"cannot create the MLflow store folder {folder} ({error.strerror})"
        return None
    if uri.startswith(("file:", "/")) or "://" not in uri:
        return None
    return None if uri.startswith(("databricks", "postgresql", "mysql", "mssql")) else \
        f"unknown tracking URI scheme in {uri!r}; use http://HOST:PORT, sqlite:///PATH or a folder"


@dataclass(frozen=True)
class Tracking:
    """The run's tracking settings, resolved and checked once before any work."""

    uri: str | None  # None: tracking off
    mode: TrackingMode = "required"
    available: bool = True  # False: optional and unreachable at the start; records wait in the outbox

    @classmethod
    def resolve(cls, mode: TrackingMode, given: str | None, warn=print) -> Tracking:
        if mode == "off":
            return cls(None, mode)
        fail_fast()
        uri = tracking_uri(given)
        problem = problem_with(uri)
        if problem is None:
            return cls(uri, mode)
        if mode == "optional":
            warn(f"warning: {problem}; this run's record waits in the outbox until `house-pipeline models registry "
                 "sync` (or the next tracked run) writes it (--tracking optional)")
            return cls(uri, mode, available=False)
        raise DataError(f"--tracking-uri: {problem}; {TRACKING_HINT}")

    @property
    def enabled(self) -> bool:
        return self.uri is not None

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


def experiment_id(client, name: str) -> str:
    """The experiment's id, created on first use (local store: its artifacts under the state folder)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if client.tracking_uri.startswith("sqlite:///"):
        location = (Path(client.tracking_uri.removeprefix("sqlite:///")).parent / "artifacts" / name).as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # noqa: BLE001 - created meanwhile by a concurrent run
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as MLflow parameters: dotted keys, string values (MLflow's limit: 6000 chars)."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= flat_params(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = str(value)[:6000]
    return flat


def numbers(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of nested metrics, with dotted names (`baseline.mape_mean`, `color.f1`)."""
    found = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            found |= numbers(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:  # not NaN
            found[f"{prefix}{key}"] = float(value)
    return found


def log_run(tracking: Tracking, experiment: str, run_name: str, params: dict[str, Any], metrics: dict[str, float],
            history: dict[str, list[float]], tags: dict[str, str], artifacts: dict[str, Path]) -> str | None:
    """One finished MLflow run: parameters, final metrics, per-epoch metrics, tags, artifact folders/files.
    A store that stops answering raises `TrackingUnavailable` (with the half-written run's id, if any)."""
    if not tracking.enabled:
        return None
    client, run_id = tracking.client(), None
    try:
        run = client.create_run(experiment_id(client, experiment), run_name=run_name,
                                tags={k: str(v) for k, v in tags.items() if v is not None})
        run_id = run.info.run_id
        _log_to(client, run_id, params, metrics, history, artifacts)
    except Exception as error:
        reason = unavailable(error)
        if reason is None:
            raise
        raise TrackingUnavailable(reason, run_id) from error
    return run_id


def _log_to(client, run_id: str, params: dict[str, Any], metrics: dict[str, float],
            history: dict[str, list[float]], artifacts: dict[str, Path]) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    steps = [Metric(name, float(value), now, step) for name, values in history.items()
             for step, value in enumerate(values, start=1) if value is not None]
    final = [Metric(name, float(value), now, 0) for name, value in metrics.items() if value is not None]
    items = [Param(k, v) for k, v in flat_params(params).items()]
    for start in range(0, len(items), 100):  # MLflow's limits per batch: 100 parameters, 1000 metrics
        client.log_batch(run_id, params=items[start:start + 100])
    for start in range(0, len(steps + final), 1000):
        client.log_batch(run_id, metrics=(steps + final)[start:start + 1000])
    for name, path in artifacts.items():
        if path.is_dir():
            client.log_artifacts(run_id, str(path), name)
        elif path.is_file():
            client.log_artifact(run_id, str(path), name or None)
    client.set_terminated(run_id, "FINISHED")


LOCAL_UI = "http://127.0.0.1:5000"  # where `make mlflow-ui` shows the local store


def run_link(tracking: Tracking, run_id: str) -> str:
    """The run's page in the MLflow UI: the tracking server's own, or `make mlflow-ui`'s for the local store."""
    run = tracking.client().get_run(run_id)
    base = tracking.uri.rstrip("/") if tracking.uri.startswith(("http://", "https://")) else LOCAL_UI
    return f"{base}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
