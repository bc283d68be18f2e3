"""Deployments from `prefect.yaml`, served from one process (`house-pipeline serve`), so the
served and the work-pool (`prefect deploy --all`) paths share one definition. The file is the one
in the working directory (where `prefect deploy` looks too) unless `--file` names another."""

from __future__ import annotations

import importlib
import os
import signal
import typing
from pathlib import Path

import yaml
from pydantic import ValidationError

from tasks.core.errors import DataError

PREFECT_YAML = Path("prefect.yaml")
# Task runs tagged "training" (price and classifier training, cross-validation, AutoML points, the colorizer)
# take a slot of this Prefect tag concurrency limit, created by `serve`: on a 2-core machine one at a time,
# so a nightly train, a weekly sweep and an on-demand compare queue up (AwaitingConcurrencySlot in the UI)
# instead of sharing the cores. HOUSE_PIPELINE_TRAINING_SLOTS sets the number of slots.
TRAINING_TAG = "training"


def training_slots() -> int:
    value = os.environ.get("HOUSE_PIPELINE_TRAINING_SLOTS", "1")
    if not value.isdigit() or int(value) < 1:
        raise DataError(f"HOUSE_PIPELINE_TRAINING_SLOTS={value!r}: give a whole number of slots, 1 or more")
    return int(value)


def ensure_training_limit(slots: int) -> None:
    """Create (or set) the "training" tag concurrency limit on the server."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag=TRAINING_TAG, concurrency_limit=slots)  # creates or updates


def _flow(entrypoint: str):
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def _config_model(flow):
    return typing.get_type_hints(flow.fn)["config"]


def deployment_specs(path: Path = PREFECT_YAML) -> list[dict]:
    """The deployments declared in prefect.yaml, each parameter set checked against its flow's config."""
    if not path.is_file():
        raise DataError(f"no deployments file: looked for {path.resolve()}; run from the folder that holds "
                        "prefect.yaml (a checkout of the project) or pass --file PATH")
    try:
        specs = yaml.safe_load(path.read_text())["deployments"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
        raise DataError(f"cannot read the deployments: {error}", path) from error
    for spec in specs:
        flow = _flow(spec["entrypoint"])
        try:
            _config_model(flow)(**spec.get("parameters", {}).get("config", {}))
        except ValidationError as error:
            raise DataError(f"deployment {flow.name}/{spec['name']}: invalid parameters: {error}", path) from error
        spec["flow"] = flow
    return specs


def _schedules(spec: dict) -> list | None:
    from prefect.schedules import Cron

    return [Cron(s["cron"], timezone=s.get("timezone")) for s in spec.get("schedules", [])] or None


def build_deployments(path: Path = PREFECT_YAML) -> list:
    return [spec["flow"].to_deployment(name=spec["name"], description=spec.get("description"), tags=spec.get("tags"),
                                       parameters=spec.get("parameters"), schedules=_schedules(spec))
            for spec in deployment_specs(path)]


def _require_server(what: str) -> None:
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise DataError(f"{what} needs a running Prefect server: start one with `prefect server start` (in a "
                        "checkout: `make ui`) and set PREFECT_API_URL=http://127.0.0.1:4200/api")


def _with_heartbeats() -> None:
    """Flow runs started from here send heartbeats, which the zombie automation watches."""
    from flows.alerts import HEARTBEAT_SECONDS, ensure_zombie_detection

    value = os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_SECONDS))
    if not value.isdigit() or int(value) < 30:
        raise DataError(f"PREFECT_FLOWS_HEARTBEAT_FREQUENCY={value!r}: give whole seconds, 30 or more (Prefect's "
                        "minimum)")
    ensure_zombie_detection(int(value))


def _server_setup() -> None:
    """What serving and workers share: the training slots, the alerts, heartbeats and zombie detection."""
    from flows.alerts import ALERT_URL_ENV, alert_url, ensure_alerts

    slots = training_slots()
    ensure_training_limit(slots)
    print(f"Training tasks run {slots} at a time (tag concurrency limit {TRAINING_TAG!r}; set "
          "HOUSE_PIPELINE_TRAINING_SLOTS to change it)", flush=True)
    if url := alert_url():
        ensure_alerts(url)
        print(f"Failed or crashed deployment runs are notified to {url}", flush=True)
    else:
        print(f"No alerts: set {ALERT_URL_ENV} to a webhook URL to be told of failed runs", flush=True)
    _with_heartbeats()


def ensure_pool(pool: str) -> bool:
    """The `process` work pool named `pool`, created if missing (True then); a pool of another type is an error."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            existing = client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(
                name=pool, type=ProcessWorker.type, base_job_template=ProcessWorker.get_default_base_job_template(),
                description="house-pipeline: flow runs in a process of whichever worker polls first"))
            return True
    if existing.type != ProcessWorker.type:
        raise DataError(f"--pool {pool}: that work pool runs {existing.type!r} jobs; name a process pool or a new "
                        "name (it is created)")
    return False


def deploy_to_pool(path: Path, pool: str) -> list[str]:
    """Every deployment of `path` registered on `pool`; its workers load the flows from this checkout's folder
    (the same path on every machine that runs a worker). Returns the deployments' names."""
    import contextlib
    import io

    from prefect import Flow

    root = path.resolve().parent
    names = []
    for spec in deployment_specs(path):
        flow = Flow.from_source(source=str(root), entrypoint=spec["entrypoint"])
        with contextlib.redirect_stdout(io.StringIO()):  # not a table per deployment: one line says it all
            flow.deploy(name=spec["name"], work_pool_name=pool, description=spec.get("description"),
                        tags=spec.get("tags"), parameters=spec.get("parameters"), schedules=_schedules(spec),
                        build=False, push=False, print_next_steps=False, ignore_warnings=True)
        names.append(f"{flow.name}/{spec['name']}")
    return names


def start_worker(path: Path, pool: str, limit: int | None, deploy: bool) -> None:
    """Create the pool if missing, register the deployments on it (unless `deploy` is False), then become
    Prefect's own worker (`prefect worker start`), which polls the pool and runs each flow run in a process."""
    import sys

    _require_server("a worker")
    if deploy:
        deployment_specs(path)  # checked before anything is created
    created = ensure_pool(pool)
    print(f"Work pool {pool!r} ({'created' if created else 'found'}, type process)", flush=True)
    _server_setup()
    if deploy:
        names = deploy_to_pool(path, pool)
        print(f"Deployed on {pool!r}: {', '.join(names)}", flush=True)
    command = [str(Path(sys.executable).with_name("prefect")), "worker", "start", "--pool", pool, "--type", "process"]
    if limit:
        command += ["--limit", str(limit)]
    print("Starting Prefect's worker: " + " ".join(command[1:]), flush=True)
    sys.stdout.flush()
    os.execv(command[0], command)


def serve_all(path: Path = PREFECT_YAML, limit: int | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C; then the flow runs in progress are cancelled (Cancelled in the UI) and the
    signal's number is returned."""
    from prefect import serve

    deployments = build_deployments(path)
    _require_server("serving")
    _server_setup()
    # Ctrl-C stops serving the way SIGTERM does: Prefect's runner cancels the flow runs it started (their
    # processes stop, the runs end Cancelled) and returns, instead of leaving them Running.
    received = []

    def as_sigterm(number: int, frame) -> None:
        received.append(number)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGINT, as_sigterm)
    serve(*deployments, limit=limit)
    return received[0] if received else signal.SIGTERM
