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


def build_deployments(path: Path = PREFECT_YAML) -> list:
    from prefect.schedules import Cron

    deployments = []
    for spec in deployment_specs(path):
        schedules = [Cron(s["cron"], timezone=s.get("timezone")) for s in spec.get("schedules", [])]
        deployments.append(spec["flow"].to_deployment(
            name=spec["name"], description=spec.get("description"), tags=spec.get("tags"),
            parameters=spec.get("parameters"), schedules=schedules or None))
    return deployments


def serve_all(path: Path = PREFECT_YAML, limit: int | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C; then the flow runs in progress are cancelled (Cancelled in the UI) and the
    signal's number is returned."""
    from prefect import serve
    from prefect.settings import get_current_settings

    deployments = build_deployments(path)
    if not get_current_settings().api.url:
        raise DataError("serving needs a running Prefect server: start one with `prefect server start` (in a "
                        "checkout: `make ui`) and set PREFECT_API_URL=http://127.0.0.1:4200/api")
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
    # Ctrl-C stops serving the way SIGTERM does: Prefect's runner cancels the flow runs it started (their
    # processes stop, the runs end Cancelled) and returns, instead of leaving them Running.
    received = []

    def as_sigterm(number: int, frame) -> None:
        received.append(number)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGINT, as_sigterm)
    serve(*deployments, limit=limit)
    return received[0] if received else signal.SIGTERM
