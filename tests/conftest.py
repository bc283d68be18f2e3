from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fixtures import make_houses, small_zipcodes

ROOT = Path(__file__).resolve().parents[1]
# The real Houses Dataset: beside the checkout (as on CI) unless HOUSES_DATASET names another copy.
REAL_DATA = Path(os.environ.get("HOUSES_DATASET", ROOT.parent / "shared" / "datasets" / "houses"))


def skip_unless_ci(reason: str):
    """Skip on a developer's machine; on CI (CI=true, set by .ci/run) a missing prerequisite fails the test,
    so a check that CI is meant to run can never be skipped there unnoticed."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run this test, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def houses(tmp_path: Path) -> Path:
    return make_houses(tmp_path / "houses", small_zipcodes())


@pytest.fixture
def real_data() -> Path:
    if not (REAL_DATA / "HousesInfo.txt").is_file():
        skip_unless_ci(f"the real Houses Dataset is not at {REAL_DATA} (set HOUSES_DATASET to its folder)")
    return REAL_DATA


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        skip_unless_ci("headless Chromium is not installed (run `make browser` as root to install Debian's chromium)")
    return browser


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """A real Prefect API (server + SQLite) for the whole session; its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def run_cli(prefect_api: str, tmp_path_factory):
    """Run `python -m flows ...` in a subprocess that reports to the test Prefect API."""

    home = tmp_path_factory.mktemp("house-pipeline-home")  # logs and the MLflow store: never the checkout's
    # MLflow tracking is off unless a test asks for it (`--tracking required`): tests/lifecycle and the
    # compare test check it; elsewhere it would only add seconds to every run.

    def run(*args: str, check: bool = True, background: bool = False):
        env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "HOUSE_PIPELINE_HOME": str(home), "MLFLOW_TRACKING_URI": "", "HOUSE_PIPELINE_TRACKING": "off"}
        command = [sys.executable, "-m", "flows", *map(str, args)]
        if background:
            return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True)
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        if check and result.returncode != 0:
            raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    return run


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves a folder; answers 503 to the next `server.fail_next[path]` requests of a path; logs each path."""

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.server.fail_next.get(self.path, 0) > 0:
            self.server.fail_next[self.path] -= 1
            self.send_error(503, "Service Unavailable (a transient failure made by the test)")
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(tmp_path: Path):
    """A real http.server on 127.0.0.1 serving tmp_path/served: (folder, base URL, server). Set
    `server.fail_next = {"/file": n}` to make the next n requests of /file fail; `server.requests` lists paths."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    server.fail_next, server.requests = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_folder(http_server):
    """(folder, base URL) of a real http.server on 127.0.0.1 serving the folder."""
    folder, url, _ = http_server
    return folder, url


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    """A real S3 endpoint (`moto_server`) on 127.0.0.1 for the whole session."""
    from tests import servers

    server = servers.moto_server(tmp_path_factory.mktemp("moto")).start(timeout=60)
    yield server
    server.stop()


@pytest.fixture
def bucket(moto, monkeypatch, tmp_path) -> str:
    """A new, empty bucket on the session's S3 endpoint (credentials and endpoint in this process's environment,
    a mirror of its own); its s3:// URL."""
    import uuid

    from tests import servers

    for name, value in servers.s3_env(moto).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOUSE_PIPELINE_MIRROR", str(tmp_path / "mirror"))
    import s3fs

    name = f"test-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"
