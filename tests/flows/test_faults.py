"""Faults around a run, as users meet them: Ctrl-C and SIGTERM (with a temporary Prefect server and with a real
one), a disk that fills up under --out and --cache, a tracking server that goes away mid-run, a Prefect server
restarted mid-run. Each is one line with its own exit code, no traceback, earlier results untouched, and a
re-run picks up where the run stopped."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tasks.core.cache import damage
from tests import servers
from tests.conftest import ROOT, skip_unless_ci
from tests.fixtures import client_call, make_houses, wait_until

pytestmark = pytest.mark.slow  # flows in subprocesses, servers

SMALL = ["--strategy", "mlp", "--interval-folds", "2", "--min-houses-per-zip", "3", "--tile-size", "8",
         "--batch-size", "4"]


@pytest.fixture(scope="module")
def houses(tmp_path_factory) -> Path:
    return make_houses(tmp_path_factory.mktemp("faults") / "houses", [90000 + n % 3 for n in range(36)],
                       photo_size=(24, 20))


def _env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"PREFECT_API_URL", "MLFLOW_TRACKING_URI"}}
    return {**env, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "HOUSE_PIPELINE_HOME": str(tmp_path / "home"), "HOUSE_PIPELINE_TRACKING": "off", **extra}


def _start(args: list, env: dict, log: Path) -> subprocess.Popen:
    """A command in a session of its own, as a terminal runs it: a signal to its group is a Ctrl-C."""
    return subprocess.Popen([sys.executable, "-m", "flows", *map(str, args)], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop_during_training(process: subprocess.Popen, log: Path, number: int, group: bool) -> tuple[int, float, str]:
    """Send `number` once a few epochs are logged; (exit code, seconds until it exited, its output)."""
    wait_until(lambda: "Epoch 5/" in log.read_text(), 240, f"training to start (log: {log})")
    sent = time.monotonic()
    (os.killpg if group else os.kill)(process.pid, number)
    code = process.wait(60)
    return code, time.monotonic() - sent, log.read_text()


def _one_line(output: str, start: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith(start)]
    assert len(lines) == 1, output[-3000:]
    assert "Traceback" not in output and "ConnectError" not in output and "unexpected" not in output
    return lines[0]


def _flow_run_states(prefect_home: Path) -> dict[str, str]:
    """The flow runs in a Prefect server's own SQLite database: {name: state type}."""
    with sqlite3.connect(prefect_home / "prefect.db") as db:
        return dict(db.execute("select name, state_type from flow_run"))


def test_ctrl_c_with_a_temporary_server_stops_reports_and_resumes(houses, tmp_path, run_cli):
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = ["train", "--data", houses, "--out", out, "--cache", cache, "--epochs", "3000", *SMALL]
    log = tmp_path / "run.log"
    code, seconds, output = _stop_during_training(_start(args, _env(tmp_path), log), log, signal.SIGINT, group=True)
    assert code == 130 and seconds < 10, (code, seconds, output[-2000:])
    line = _one_line(output, "interrupted (SIGINT)")
    assert "resumes from its last finished epoch" in line
    assert "Stopping temporary server" in output  # after the run's end was reported, not killed with it
    states = _flow_run_states(tmp_path / "prefect")
    assert [state for name, state in states.items() if name.startswith("train-")] == ["CRASHED"], states
    assert not out.exists() and not list(tmp_path.glob(".run.*"))  # nothing half-written, no staging left
    # The same command again resumes from the last finished epoch (stopped here by its own time limit).
    again = run_cli(*args, "--time-limit", "2", check=False)
    resumed = [line for line in again.stdout.splitlines() + again.stderr.splitlines() if "Resuming from" in line]
    assert again.returncode == 1 and resumed and "after epoch 0 " not in resumed[0], again.stderr[-2000:]


def test_sigterm_to_a_run_reporting_to_a_real_server_ends_it_crashed(houses, tmp_path, prefect_api):
    args = ["train", "--data", houses, "--out", tmp_path / "run", "--cache", tmp_path / "cache", "--epochs", "3000",
            *SMALL]
    log = tmp_path / "run.log"
    process = _start(args, _env(tmp_path, PREFECT_API_URL=prefect_api), log)
    code, seconds, output = _stop_during_training(process, log, signal.SIGTERM, group=False)  # `kill PID`
    assert code == 143 and seconds < 10, (code, seconds, output[-2000:])
    _one_line(output, "interrupted (SIGTERM)")
    name = output.split("Beginning flow run '")[1].split("'")[0]
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    (run,) = client_call(prefect_api, lambda c: c.read_flow_runs(
        flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))))
    assert run.state.type.value == "CRASHED" and "termination signal" in run.state.message


def test_a_prefect_server_restarted_mid_run_is_survived(houses, tmp_path):
    server = servers.prefect_server(tmp_path / "prefect-server").start()
    try:
        args = ["train", "--data", houses, "--out", tmp_path / "run", "--cache", tmp_path / "cache", "--epochs",
                "300", *SMALL]
        log = tmp_path / "run.log"
        process = _start(args, _env(tmp_path, PREFECT_API_URL=servers.api_url(server)), log)
        wait_until(lambda: "Epoch 5/" in log.read_text(), 240, f"training to start (log: {log})")
        server.stop()
        time.sleep(2)
        server.start()
        assert process.wait(300) == 0, log.read_text()[-3000:]
    finally:
        server.stop()
    assert "Test MAPE" in log.read_text() and json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]
    states = _flow_run_states(tmp_path / "prefect-server")
    assert [state for name, state in states.items() if name.startswith("train-")] == ["COMPLETED"], states


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 4 MiB file system of its own (tmpfs), to fill up: mounting needs root, as on CI."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        skip_unless_ci(f"cannot mount a small file system here ({mounted.stderr.strip()}); run as root")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of `folder` until only `leave` bytes are free."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_full_disk_under_out_and_cache_is_one_line_and_leaves_the_earlier_run_as_it_was(houses, tmp_path, run_cli,
                                                                                          small_disk):
    out = small_disk / "run"
    first = run_cli("train", "--data", houses, "--out", out, "--cache", tmp_path / "cache", "--epochs", "2", *SMALL)
    assert "Test MAPE" in first.stdout
    earlier = _files(out)
    _fill(small_disk, 64 * 1024)
    full = run_cli("train", "--data", houses, "--out", out, "--cache", tmp_path / "cache", "--epochs", "3", *SMALL,
                   check=False)
    assert full.returncode == 74, full.stderr[-3000:]
    line = _one_line(full.stderr, "error:")
    assert line == f"error: no space left on {small_disk} while writing --out {out}: free some space there or " \
                   "choose another place (earlier results there are unchanged)"
    assert _files(out) == earlier and sorted(p.name for p in small_disk.iterdir()) == ["filler", "run"]

    cache = small_disk / "cache"  # a cache on the full disk: its own line, every entry in it complete and verified
    full = run_cli("train", "--data", houses, "--out", tmp_path / "other", "--cache", cache, *SMALL, check=False)
    assert full.returncode == 74 and f"while writing --cache {cache}:" in _one_line(full.stderr, "error:")
    entries = [key for stage in cache.iterdir() if stage.name != "prefect-results" for key in stage.iterdir()]
    assert all(not key.name.startswith(".tmp") and damage(key) is None for key in entries), entries

    (small_disk / "filler").unlink()  # space again: the next run replaces the earlier one whole
    again = run_cli("train", "--data", houses, "--out", out, "--cache", tmp_path / "cache", "--epochs", "3", *SMALL)
    assert "Test MAPE" in again.stdout and json.loads((out / "metrics.json").read_text())["epochs"] == 3


def test_a_tracking_server_that_goes_away_costs_seconds_and_its_record_waits_for_sync(houses, tmp_path, prefect_api):
    mlflow = servers.mlflow_server(tmp_path / "mlflow").start()
    uri = f"http://127.0.0.1:{mlflow.port}"
    env = _env(tmp_path, PREFECT_API_URL=prefect_api)
    try:
        args = ["train", "--data", houses, "--out", tmp_path / "run", "--cache", tmp_path / "cache", "--epochs",
                "150", "--tracking", "required", "--tracking-uri", uri, *SMALL]
        log = tmp_path / "run.log"
        process = _start(args, env, log)
        wait_until(lambda: "Epoch 5/" in log.read_text(), 240, f"training to start (log: {log})")
        mlflow.stop()
        # The training and its range's calibration go on without the store; what the store's absence costs is
        # the time from the report (the last step before the record) to the end.
        wait_until(lambda: "Test MAPE" in log.read_text() or process.poll() is not None, 300, "the report")
        reported = time.monotonic()
        code = process.wait(300)
        output, after_report = log.read_text(), time.monotonic() - reported
        assert code == 75, output[-3000:]
        line = _one_line(output, "error:")
        assert f"the MLflow tracking store at {uri} did not answer" in line and "models registry sync" in line
        assert "Registry: not yet" in output and (tmp_path / "run" / "model" / "model.keras").is_file()
        assert "Retrying" not in output and after_report < 120  # seconds of retries, not minutes
        outbox = tmp_path / "home" / "tracking-outbox"
        (waiting,) = outbox.iterdir()
        assert (waiting / "model" / "model.keras").is_file() and (waiting / "test.parquet").is_file()

        mlflow.start()
        synced = _run(["models", "registry", "sync", "--tracking-uri", uri], env)
        assert "registry: version 1 promoted to champion" in synced.stdout and not list(outbox.iterdir())
        assert _run(["models", "registry", "list", "--tracking-uri", uri], env).stdout.split()[:2] == ["1", "champion"]
    finally:
        mlflow.stop()


def _run(args: list, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "flows", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def test_ctrl_c_on_serve_cancels_the_flow_runs_it_was_running(houses, tmp_path):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = servers.prefect_server(tmp_path / "prefect-server").start()
    api = servers.api_url(server)
    log = tmp_path / "serve.log"
    serve = _start(["serve"], _env(tmp_path, PREFECT_API_URL=api, PREFECT_HOME=str(tmp_path / "prefect-server")), log)
    try:
        wait_until(lambda: client_call(api, lambda c: c.read_deployment_by_name("train/nightly")), 180,
                   f"the deployments to be served (log: {log})")
        config = {"data": str(houses), "out": str(tmp_path / "run"), "cache": str(tmp_path / "cache"),
                  "strategy": "mlp", "epochs": 3000, "min_houses_per_zip": 3, "tile_size": 8, "batch_size": 4}
        with temporary_settings({PREFECT_API_URL: api}):
            run = run_deployment("train/nightly", parameters={"config": config}, timeout=0)
        code, seconds, output = _stop_during_training(serve, log, signal.SIGINT, group=True)
        assert code == 130 and seconds < 15, (code, seconds, output[-2000:])
        assert "stopped (SIGINT): the flow runs this process was running are cancelled" in output
        state = client_call(api, lambda c: c.read_flow_run(run.id)).state
        assert state.type.value in ("CANCELLED", "CRASHED"), state
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
        server.stop()
