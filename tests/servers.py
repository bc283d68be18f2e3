"""Real servers the tests start, stop and start again on the same port and store: `mlflow server` and
`prefect server start` (each in a session of its own, so a signal the test sends a run never reaches it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.fixtures import free_port, http_ok, wait_until


class Server:
    """A server process on a fixed port with a fixed store; `start()` again after `stop()` resumes it."""

    def __init__(self, command: list[str], health: str, env: dict, log: Path, port: int):
        self.command, self.health, self.env, self.log, self.port = command, health, env, log, port
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 180) -> Server:
        with self.log.open("a") as output:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=output, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        wait_until(lambda: http_ok(self.health), timeout, f"{self.command[2]} (log: {self.log})")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


def mlflow_server(root: Path) -> Server:
    """`mlflow server` with its SQLite database and artifact folder under `root` (not started)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_TRACKING_URI": ""}
    return Server([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers",
                   "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination",
                   str(root / "artifacts")], f"http://127.0.0.1:{port}/health", env, root / "server.log", port)


def prefect_server(home: Path) -> Server:
    """`prefect server start` with its own PREFECT_HOME (not started); its API is `api_url(server)`."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": ""}
    return Server([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
                   "--no-ui"], f"http://127.0.0.1:{port}/api/health", env, home / "server.log", port)


def api_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}/api"
