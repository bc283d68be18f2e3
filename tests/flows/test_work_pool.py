"""Deployments on a Prefect work pool, as a team runs them: `house-pipeline worker` creates the pool and starts
Prefect's worker; two workers share the runs; a worker whose machine dies (its processes killed, no goodbye)
leaves a run that the heartbeat automation marks Crashed, and running the deployment again on the other worker
resumes the training from its checkpoint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests import servers
from tests.conftest import ROOT
from tests.fixtures import make_houses, wait_until

pytestmark = pytest.mark.slow  # a Prefect server, two workers, flow runs in their processes


def _worker(env: dict, log: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flows", "worker", "--limit", "1", *extra], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _kill_machine(process: subprocess.Popen) -> None:
    """What a machine that dies does to its processes: the worker and the flow runs it started stop at once."""
    victims = [*psutil.Process(process.pid).children(recursive=True), psutil.Process(process.pid)]
    for victim in victims:
        victim.kill()
    psutil.wait_procs(victims, timeout=30)


def _state(client, run_id) -> tuple[str, str]:
    run = client.read_flow_run(run_id)
    return run.state.type.value, run.state.message or ""


def _worker_name(log: Path) -> str:
    """The name Prefect's worker gave itself ("Worker 'ProcessWorker 1a2b...' started!")."""
    return re.search(r"Worker '([^']+)' started!", log.read_text())[1]


def _screenshot_folder(tmp_path: Path) -> Path:
    """Where UI screenshots go: $UI_SCREENSHOTS (to keep them, e.g. for the README) or the test's folder."""
    return Path(os.environ.get("UI_SCREENSHOTS", tmp_path))


def test_two_workers_share_the_runs_and_a_dead_workers_training_is_crashed_then_resumed(tmp_path: Path, chromium):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.browser import Browser

    houses = make_houses(tmp_path / "houses", [90000 + n % 3 for n in range(36)], photo_size=(24, 20))
    server = servers.prefect_server(tmp_path / "prefect", ui=True).start()
    api = servers.api_url(server)
    env = {**{k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}, "PREFECT_API_URL": api,
           "PREFECT_HOME": str(tmp_path / "prefect"), "HOUSE_PIPELINE_HOME": str(tmp_path / "home"),
           "HOUSE_PIPELINE_TRACKING": "off", "PREFECT_WORKER_QUERY_SECONDS": "2"}
    workers = []
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    with temporary_settings({PREFECT_API_URL: api}):  # this test's client calls go to this server
        browser = None
        try:
            browser = Browser(chromium)
            _scenario(env, houses, tmp_path, workers, logs, browser, api.removesuffix("/api"))
        finally:
            if browser is not None:
                browser.close()
            for worker in workers:
                if worker.poll() is None:
                    _kill_machine(worker)
            server.stop()


def _scenario(env: dict, houses: Path, tmp_path: Path, workers: list, logs: list[Path], browser, ui: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    workers.append(_worker(env, logs[0]))
    wait_until(lambda: "started!" in logs[0].read_text(), 240, f"worker a ({logs[0]})")
    assert "Work pool 'local' (created, type process)" in logs[0].read_text()
    assert "train/nightly" in logs[0].read_text()
    workers.append(_worker(env, logs[1], "--no-deploy"))
    wait_until(lambda: "started!" in logs[1].read_text(), 240, f"worker b ({logs[1]})")

    small = {"data": str(houses), "cache": str(tmp_path / "cache"), "min_houses_per_zip": 3, "tile_size": 8}
    training = {"config": {**small, "strategy": "mlp", "interval_folds": 2, "epochs": 150, "batch_size": 4,
                           "tracking": "off", "out": str(tmp_path / "train")}}
    first = run_deployment("train/nightly", parameters=training, timeout=0)
    other = run_deployment("preprocess/on-demand", timeout=300,  # each worker runs one at a time (--limit 1)
                           parameters={"config": {**small, "out": str(tmp_path / "preprocess")}})
    assert other.state.is_completed(), other.state
    trainer = next(i for i, log in enumerate(logs) if str(first.id) in log.read_text())
    assert str(other.id) in logs[1 - trainer].read_text(), "one worker ran both runs"
    # The UI's page of the run names the pool and the worker that picked it up (the worker's own log line).
    worker = _worker_name(logs[1 - trainer])
    browser.open(f"{ui}/runs/flow-run/{other.id}", " && ".join(
        f"document.body.innerText.includes({json.dumps(text)})"
        for text in ("Completed", "Work Pool", f"Worker '{worker}' submitting flow run '{other.id}'")))
    assert "Work Pool\nlocal" in browser.evaluate("document.body.innerText")
    browser.screenshot(_screenshot_folder(tmp_path) / "deployment-run-on-worker.png")

    wait_until(lambda: "Epoch 20/" in logs[trainer].read_text(), 300, "the training to pass epoch 20")
    killed = time.monotonic()
    _kill_machine(workers[trainer])
    with get_client(sync_client=True) as client:
        assert _state(client, first.id)[0] == "RUNNING"
        wait_until(lambda: _state(client, first.id)[0] == "CRASHED", 300, "the automation to mark it Crashed")
        message = _state(client, first.id)[1]
    crashed_after = time.monotonic() - killed
    assert "no heartbeat for 90 s" in message and "resume" in message, message
    assert crashed_after < 240, crashed_after

    again = run_deployment("train/nightly", parameters=training, timeout=600)
    assert again.state.is_completed(), again.state
    survivor = logs[1 - trainer].read_text()
    assert str(again.id) in survivor and "Resuming from the checkpoint after epoch" in survivor, survivor[-3000:]
    assert (tmp_path / "train" / "report.md").is_file()
