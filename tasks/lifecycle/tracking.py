"""Where experiment records go, and how a flow run becomes an MLflow run.

Store: `--tracking-uri`, else `MLFLOW_TRACKING_URI`, else a local SQLite database and artifact folder
under the project's state folder (`.house-pipeline/mlflow/`, created on first use). A shared
`mlflow server` is an `http://` URI. All calls go through an explicit `MlflowClient` (no global
active run), so runs logged from Prefect's worker threads do not mix.
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

    uri: str | None  # None: tracking off (or optional and unreachable)

    @classmethod
    def resolve(cls, mode: TrackingMode, given: str | None, warn=print) -> Tracking:
        if mode == "off":
            return cls(None)
        uri = tracking_uri(given)
        problem = problem_with(uri)
        if problem is None:
            return cls(uri)
        if mode == "optional":
            warn(f"warning: {problem}; this run is not tracked (--tracking optional)")
            return cls(None)
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
    """One finished MLflow run: parameters, final metrics, per-epoch metrics, tags, artifact folders/files."""
    if not tracking.enabled:
        return None
    from mlflow.entities import Metric, Param

    client = tracking.client()
    run = client.create_run(experiment_id(client, experiment), run_name=run_name,
                            tags={k: str(v) for k, v in tags.items() if v is not None})
    now = int(time.time() * 1000)
    steps = [Metric(name, float(value), now, step) for name, values in history.items()
             for step, value in enumerate(values, start=1) if value is not None]
    final = [Metric(name, float(value), now, 0) for name, value in metrics.items() if value is not None]
    items = [Param(k, v) for k, v in flat_params(params).items()]
    for start in range(0, len(items), 100):  # MLflow's limits per batch: 100 parameters, 1000 metrics
        client.log_batch(run.info.run_id, params=items[start:start + 100])
    for start in range(0, len(steps + final), 1000):
        client.log_batch(run.info.run_id, metrics=(steps + final)[start:start + 1000])
    for name, path in artifacts.items():
        if path.is_dir():
            client.log_artifacts(run.info.run_id, str(path), name)
        elif path.is_file():
            client.log_artifact(run.info.run_id, str(path), name or None)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


LOCAL_UI = "http://127.0.0.1:5000"  # where `make mlflow-ui` shows the local store


def run_link(tracking: Tracking, run_id: str) -> str:
    """The run's page in the MLflow UI: the tracking server's own, or `make mlflow-ui`'s for the local store."""
    run = tracking.client().get_run(run_id)
    base = tracking.uri.rstrip("/") if tracking.uri.startswith(("http://", "https://")) else LOCAL_UI
    return f"{base}/#/experiments/{run.info.experiment_id}/runs/{run_id}"
