from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fixtures import make_houses, small_zipcodes

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "datasets" / "houses"


@pytest.fixture
def houses(tmp_path: Path) -> Path:
    return make_houses(tmp_path / "houses", small_zipcodes())


@pytest.fixture
def real_data() -> Path:
    if not (REAL_DATA / "HousesInfo.txt").is_file():
        pytest.skip(f"the real Houses Dataset is not at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """A real Prefect API (server + SQLite) for the whole session; its URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture
def run_cli(prefect_api: str, tmp_path: Path):
    """Run `python -m flows ...` in a subprocess that reports to the test Prefect API."""

    def run(*args: str, check: bool = True, background: bool = False):
        env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
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
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(tmp_path: Path):
    """(folder, base URL) of a real http.server on 127.0.0.1 serving the folder."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
