"""Operations against a real Prefect server started here on 127.0.0.1 (`prefect server start`,
SQLite): deployments served by `python -m flows serve`, runs triggered through the API, their
artifacts and final states read back, schedules, parameter validation, and the UI in a browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fixtures import client_call, free_port, make_houses, overlap_seconds, wait_until

TINY = {"interval_folds": 2, "min_houses_per_zip": 3, "tile_size": 8, "epochs": 2, "batch_size": 4}

pytestmark = pytest.mark.slow  # every test here starts flows in subprocesses


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`prefect server start` on a free port with its own PREFECT_HOME; (api url, ui url, env)."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "HOUSE_PIPELINE_HOME": str(home / "house-pipeline"),
           "MLFLOW_TRACKING_URI": "", "HOUSE_PIPELINE_TRACKING": "off"}
    log = (home / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2).status == 200,
              180, "the Prefect server")
        yield f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}", env
    finally:
        process.terminate()
        process.wait(30)


class _Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: keeps each POSTed body."""

    def do_POST(self):
        self.server.received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def alerts():
    """A small HTTP receiver for the alert webhook: (its URL, the bodies received)."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    receiver.received = []
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{receiver.server_address[1]}/hook", receiver.received
    receiver.shutdown()


@pytest.fixture(scope="module")
def served(server, alerts, tmp_path_factory):
    """`python -m flows serve` running against the server until the module ends, alerts to the receiver."""
    api, _, env = server
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    process = subprocess.Popen([sys.executable, "-m", "flows", "serve"], cwd=ROOT,
                               env={**env, "HOUSE_PIPELINE_ALERT_URL": alerts[0]},
                               stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: client_call(api, lambda c: c.read_deployment_by_name("sweep/weekly")), 180,
              f"the deployments to be served (log: {log_path})")
        yield process
    finally:
        process.terminate()
        process.wait(60)


def _run_deployment(api: str, name: str, parameters: dict):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        return run_deployment(name, parameters=parameters, timeout=600, poll_interval=1)


@pytest.fixture(scope="module")
def houses(tmp_path_factory) -> Path:
    return make_houses(tmp_path_factory.mktemp("ops") / "houses", [90000 + n % 3 for n in range(40)],
                       photo_size=(24, 20))


def test_a_served_deployment_runs_through_the_api_and_reports_artifacts(server, served, houses, tmp_path):
    from prefect.client.schemas.filters import FlowRunFilter

    api, _, _ = server
    config = {"data": str(houses), "cache": str(tmp_path / "cache"), "out": str(tmp_path / "out"),
              "strategy": "mlp", **TINY}
    run = _run_deployment(api, "train/nightly", {"config": config})
    assert run.state.is_completed(), run.state.message
    assert run.name.startswith("train-mlp-fit-houses-")
    assert (tmp_path / "out" / "metrics.json").is_file()
    artifacts = {a.key: a for a in _run_artifacts(api, run.id)}  # this run's own, not an earlier run's
    assert {"train-metrics", "train-report", "train-progress"} <= set(artifacts)
    assert artifacts["train-progress"].data == 100.0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    table = {row["metric"]: row["model"] for row in json.loads(artifacts["train-metrics"].data)}
    assert table["MAPE mean (%)"] == pytest.approx(metrics["mape_mean"], abs=1e-4)
    tasks = client_call(api, lambda c: c.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run.id]})))
    assert {"train", "evaluate"} <= {t.name.rsplit("-", 1)[0] for t in tasks}
    assert all(t.state.is_completed() for t in tasks)


def _run_artifacts(api: str, flow_run_id) -> list:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    return client_call(api, lambda c: c.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))))


def _other_deployments(houses: Path, tmp_path: Path) -> dict[str, tuple[dict, str, str]]:
    """deployment -> (config, an artifact key the run must publish, a file it must write under out)."""
    from tasks.dnn.toy_networks import sepia_net
    from tests.dnn.fixtures import tiny_colorization_model

    out, cache = str(tmp_path / "out"), str(tmp_path / "cache")
    caffe = tiny_colorization_model(tmp_path / "caffe")
    return {
        "compare/on-demand": ({"data": str(houses), "cache": cache, "out": out, "strategies": ["mlp"],
                               "trainers": ["fit"], **TINY}, "leaderboard", "leaderboard.csv"),
        "classify/on-demand": ({"houses": str(houses), "cache": cache, "out": out, "epochs": 1, "image_size": 16,
                                "batch_size": 8}, "classify-report", "metrics.json"),
        "stylize/on-demand": ({"input": str(houses), "model": str(sepia_net(tmp_path / "sepia.onnx")),
                               "width": 16, "cache": cache, "out": out}, "stylize-summary", "contact_sheet.png"),
        "colorize/on-demand": ({"input": str(houses), "model": str(caffe["caffemodel"]),
                                "prototxt": str(caffe["prototxt"]), "points": str(caffe["points"]), "size": 16,
                                "cache": cache, "out": out}, "colorize-summary", "contact_sheet.png"),
    }


@pytest.mark.parametrize("name", ["compare/on-demand", "classify/on-demand", "stylize/on-demand",
                                  "colorize/on-demand"])
def test_every_other_deployment_runs_once_through_the_api(server, served, houses, tmp_path, name):
    api, _, _ = server
    config, artifact, output = _other_deployments(houses, tmp_path)[name]
    run = _run_deployment(api, name, {"config": config})
    assert run.state.is_completed(), run.state.message
    assert artifact in {a.key for a in _run_artifacts(api, run.id)}
    assert (tmp_path / "out" / output).stat().st_size > 0


def test_schedules_are_registered_with_their_cron_and_timezone(server, served):
    api, _, _ = server
    nightly = client_call(api, lambda c: c.read_deployment_by_name("train/nightly"))
    weekly = client_call(api, lambda c: c.read_deployment_by_name("sweep/weekly"))
    assert [(s.schedule.cron, s.schedule.timezone) for s in nightly.schedules] == [("0 2 * * *", "Europe/London")]
    assert [(s.schedule.cron, s.schedule.timezone) for s in weekly.schedules] == [("0 3 * * 0", "Europe/London")]
    assert set(nightly.tags) == {"houses", "train"}
    assert nightly.parameter_openapi_schema["definitions"]["TrainConfig"]["properties"]["trainer"]["enum"] == [
        "fit", "stream", "batch", "distributed"]
    # Deployments run anywhere: no path of this checkout is baked into what the server stores.
    for deployment in (nightly, weekly):
        assert str(ROOT) not in json.dumps(deployment.parameter_openapi_schema) + json.dumps(deployment.parameters)


@pytest.mark.parametrize("config, field", [({"epochs": 0}, "epochs"), ({"trainer": "magic"}, "trainer"),
                                           ({"budgets": []}, "budgets")])
def test_invalid_parameters_are_rejected_by_the_api(server, served, config, field):
    from prefect.exceptions import PrefectHTTPStatusError

    api, _, _ = server
    name = "sweep/weekly" if field == "budgets" else "train/nightly"
    deployment = client_call(api, lambda c: c.read_deployment_by_name(name))
    with pytest.raises(PrefectHTTPStatusError) as raised:
        client_call(api, lambda c: c.create_flow_run_from_deployment(deployment.id, parameters={"config": config}))
    assert raised.value.response.status_code in (409, 422) and field in raised.value.response.text


def test_a_failed_run_says_why_in_its_final_state_and_alerts(server, served, alerts, tmp_path):
    api, _, _ = server
    missing = tmp_path / "no-such-folder"
    run = _run_deployment(api, "preprocess/on-demand", {"config": {"data": str(missing), "cache": str(tmp_path / "c"),
                                                                   "out": str(tmp_path / "o")}})
    assert run.state.is_failed()
    assert str(missing) in run.state.message, run.state.message
    # The automation `serve` created sends the failure to the webhook.
    body = wait_until(lambda: next((b for b in alerts[1] if run.name in b), None), 120, "the failure alert")
    assert "Failed" in json.loads(body)["subject"] and str(missing) in json.loads(body)["body"]


def test_a_model_the_gate_keeps_out_is_alerted(server, served, alerts):
    """The promotion gate's event (the gate's name, resource and payload, sent to this server) reaches the
    webhook. Sent with a client of its own: this process's shared events worker may point at another API."""
    import asyncio

    from prefect.events import Event
    from prefect.events.clients import get_events_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.lifecycle.registry import MODEL_NAME, NOT_PROMOTED_EVENT

    event = Event(event=NOT_PROMOTED_EVENT, resource={"prefect.resource.id": f"house-pipeline.model.{MODEL_NAME}"},
                  payload={"version": 7, "champion": 5, "reasons": ["test MAPE 30.00 % is worse"]})

    async def send():
        async with get_events_client() as client:
            await client.emit(event)

    with temporary_settings({PREFECT_API_URL: server[0]}):
        asyncio.run(send())
    body = wait_until(lambda: next((b for b in alerts[1] if "version 7" in b), None), 120, "the not-promoted alert")
    assert json.loads(body)["body"] == "The promotion gate kept champion version 5: test MAPE 30.00 % is worse"


@pytest.fixture(scope="module")
def browser(chromium):
    from tests.browser import Browser

    opened = Browser(chromium)
    yield opened
    opened.close()


def _screenshot_folder(tmp_path: Path) -> Path:
    """Where UI screenshots go: $UI_SCREENSHOTS (to keep them, e.g. for the README) or the test's folder."""
    return Path(os.environ.get("UI_SCREENSHOTS", tmp_path))


def test_the_ui_shows_the_run_and_its_report_with_the_plots_in_the_page(server, served, houses, tmp_path, browser):
    api, ui, _ = server
    config = {"data": str(houses), "cache": str(tmp_path / "cache"), "out": str(tmp_path / "out"), "strategy": "mlp",
              **TINY}
    run = _run_deployment(api, "train/nightly", {"config": config})
    browser.open(f"{ui}/runs/flow-run/{run.id}", f"document.body.innerText.includes({json.dumps(run.name)})")
    browser.screenshot(_screenshot_folder(tmp_path) / "flow-run.png")

    report = next(a for a in _run_artifacts(api, run.id) if a.key == "train-report")
    # loss per epoch, predicted vs actual, residuals, what moves the prices
    assert report.data.count("](data:image/png;base64,") == 4 and "file://" not in report.data
    browser.open(f"{ui}/artifacts/artifact/{report.id}",
                 "document.images.length >= 4 && Array.from(document.images).every(i => i.complete)")
    plots = "Array.from(document.images).filter(i => i.src.startsWith('data:image/png'))"
    widths = browser.evaluate(f"{plots}.map(i => i.naturalWidth)")
    assert len(widths) == 4 and all(width > 100 for width in widths), widths  # decoded and shown by the UI
    browser.evaluate(f"{plots}[0].scrollIntoView()")
    browser.screenshot(_screenshot_folder(tmp_path) / "train-report.png")


def test_two_training_runs_started_together_take_turns(server, served, houses, tmp_path):
    """`serve` created the "training" tag limit (1 slot): a training waits for a free slot, then they take turns.

    The test holds the one slot itself until both runs' trainings exist, so that both are seen waiting whatever
    the machine's speed (a run that merely happened to reach its training later would prove nothing)."""
    from prefect.client.schemas.filters import FlowRunFilter

    api, _, _ = server
    limit = client_call(api, lambda c: c.read_concurrency_limit_by_tag("training"))
    assert limit.concurrency_limit == 1
    held = client_call(api, lambda c: c.increment_concurrency_slots_with_lease(
        names=["tag:training"], slots=1, mode="concurrency", lease_duration=900))
    lease = held.json()["lease_id"]
    deployment = client_call(api, lambda c: c.read_deployment_by_name("train/nightly"))
    runs = [client_call(api, lambda c, n=n: c.create_flow_run_from_deployment(deployment.id, parameters={"config": {
        "data": str(houses), "cache": str(tmp_path / f"cache{n}"), "out": str(tmp_path / f"out{n}"),
        "strategy": "mixed", **TINY, "epochs": 20}})) for n in range(2)]  # separate caches: no shared work

    def trainings():
        return client_call(api, lambda c: c.read_task_runs(flow_run_filter=FlowRunFilter(
            id={"any_": [r.id for r in runs]})))

    def both_waiting():
        waiting = [t for t in trainings() if t.name.startswith("train-")]
        return len(waiting) == 2 and waiting

    wait_until(both_waiting, 600, "both runs' trainings to wait for the slot")
    time.sleep(3)  # had either started, it would show by now
    assert [t.state.name for t in trainings() if t.name.startswith("train-")] == ["Pending", "Pending"]
    released = datetime.now(UTC)
    client_call(api, lambda c: c.release_concurrency_slots_with_lease(lease))

    def finished():
        states = [client_call(api, lambda c, r=r: c.read_flow_run(r.id)).state for r in runs]
        return all(s.is_final() for s in states) and states

    states = wait_until(finished, 600, "both training runs")
    assert all(state.is_completed() for state in states), [state.message for state in states]
    slots = [t for t in trainings() if "training" in t.tags]  # per run: its model, its range's calibration
    assert len(slots) == 4 and overlap_seconds(slots) == 0  # one after the other ...
    assert all(t.start_time >= released for t in slots if t.name.startswith("train-"))  # ... once the slot was free


def test_a_rerun_shows_its_expensive_tasks_cached_and_a_changed_photo_builds_again(server, served, houses, tmp_path,
                                                                                  browser):
    """Prefect is told about the project's cache: the UI shows a reuse as `Cached`, and only a reuse."""
    import cv2

    from tests.fixtures import task_runs

    api, ui, _ = server
    data = tmp_path / "houses"
    shutil.copytree(houses, data)
    config = {"data": str(data), "cache": str(tmp_path / "cache"), "out": str(tmp_path / "out"), "strategy": "mlp",
              **TINY}
    expensive = ("build-montages", "build-dataset", "train-")

    def run_and_states() -> tuple:
        since = datetime.now(UTC)
        run = _run_deployment(api, "train/nightly", {"config": config})
        assert run.state.is_completed(), run.state.message
        return run, {name: [task.state.name for state in ("Completed", "Cached")
                            for task in task_runs(api, since, name, state)] for name in expensive}

    _, first = run_and_states()
    assert first == {name: ["Completed"] for name in expensive}
    again, second = run_and_states()
    assert second == {name: ["Cached"] for name in expensive}
    summary = json.loads((tmp_path / "out" / "preprocess" / "summary.json").read_text())
    assert summary["cache"] == {"montage_shards_built": 0, "montage_shards_reused": 1, "dataset_built": False}

    browser.open(f"{ui}/runs/flow-run/{again.id}?tab=Task%20Runs", "document.body.innerText.includes('Cached')")
    browser.screenshot(_screenshot_folder(tmp_path) / "cached-run.png")

    photo = data / "5_kitchen.jpg"
    cv2.imwrite(str(photo), 255 - cv2.imread(str(photo)))  # one photo changed
    _, third = run_and_states()
    assert third == {name: ["Completed"] for name in expensive}
