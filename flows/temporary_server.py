"""The temporary Prefect server of a command run without `PREFECT_API_URL`.

Prefect would start one on its own, as a child in the command's process group: Ctrl-C at the terminal
reaches both, the server dies first, and the run can no longer report that it stopped (it stays
`Running`, the command hangs in retries). This starts the same server the same way (uvicorn on
Prefect's app factory, Prefect's settings for a temporary server), but in a session of its own, so a
signal reaches the command alone; the command reports the run's end, then stops the server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

from tasks.core.faults import Unreachable
from tasks.core.state import state_dir


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _send_pending_reports() -> None:
    """Logs and events still queued for the API go out before its server stops (else the process would
    retry them against a closed port on its way out)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=5)


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """Within the block, flows report to `PREFECT_API_URL`, or to a temporary server started here."""
    import prefect
    from prefect.logging import get_logger
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    if PREFECT_API_URL.value():
        if not _healthy(PREFECT_API_URL.value().rstrip("/")):
            raise Unreachable(f"the Prefect API at {PREFECT_API_URL.value()} (PREFECT_API_URL) does not answer: start "
                              "the server (`make ui`), or unset PREFECT_API_URL to run with a temporary one")
        yield
        return
    log = get_logger()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log.info("Starting temporary server on http://127.0.0.1:%d (set PREFECT_API_URL to report to a running "
             "server instead: `make ui`)", port)
    logs = state_dir() / "logs" / "prefect-server.log"
    logs.parent.mkdir(parents=True, exist_ok=True)
    from prefect.settings import get_current_settings

    get_current_settings().home.mkdir(parents=True, exist_ok=True)  # its SQLite database goes there (PREFECT_HOME)
    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
    with open(logs, "ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port), "--log-level",
             "error", "--lifespan", "on"], env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise Unreachable(f"the temporary Prefect server did not start (see {logs}); start one with "
                                  "`make ui` and set PREFECT_API_URL=http://127.0.0.1:4200/api")
            time.sleep(0.1)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield
    finally:
        _send_pending_reports()
        log.info("Stopping temporary server on http://127.0.0.1:%d", port)
        _stop(process)
