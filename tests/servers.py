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
        wait_until(lambda: http_ok(self.health), timeout, f"{Path(self.command[0]).name} (log: {self.log})")
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


def mlflow_server(root: Path, artifacts: str | None = None, env: dict | None = None) -> Server:
    """`mlflow server` with its SQLite database under `root` and its artifacts there too, or at `artifacts` (an
    s3:// URL: the server proxies them, clients need no credentials) (not started)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_TRACKING_URI": "", **(env or {})}
    return Server([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers",
                   "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination",
                   artifacts or str(root / "artifacts")], f"http://127.0.0.1:{port}/health", env,
                  root / "server.log", port)


def prefect_server(home: Path, ui: bool = False) -> Server:
    """`prefect server start` with its own PREFECT_HOME (not started); its API is `api_url(server)`, its UI (when
    `ui`) the same address without `/api`."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": "", "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}  # where the UI's pages call
    return Server([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
                   *([] if ui else ["--no-ui"])], f"http://127.0.0.1:{port}/api/health", env, home / "server.log", port)


def api_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}/api"


S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def moto_server(folder: Path, env: dict | None = None) -> Server:
    """`moto_server`: a real S3 endpoint on 127.0.0.1 (objects in memory; a restart empties it). `env` adds to
    its environment (INITIAL_NO_AUTH_ACTION_COUNT=0: it checks credentials, as AWS does)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)]
    return Server(command, f"http://127.0.0.1:{port}/moto-api/data.json", {**os.environ, **(env or {})},
                  folder / "moto.log", port)


def s3_env(server: Server) -> dict:
    """What a process needs to reach the moto server: credentials and endpoint, from the environment only."""
    return {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.port}"}
