"""Headless Chromium driven through its DevTools protocol (the system Chromium, `websockets` from
Prefect's own dependencies): open a page, let its scripts run, evaluate JavaScript, take a screenshot."""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


class Browser:
    def __init__(self, executable: str):
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        self._process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--no-first-run", "--remote-debugging-port=0",
             "--window-size=1400,1000", f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(p for p in pages if p["type"] == "page")
        from websockets.sync.client import connect

        self._socket = connect(page["webSocketDebuggerUrl"], max_size=2**28)
        self._ids = itertools.count(1)

    def call(self, method: str, **params) -> dict:
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._socket.recv(timeout=120))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def open(self, url: str, ready: str, timeout: float = 60) -> None:
        """Go to `url` and wait until the JavaScript expression `ready` is true (the app has rendered)."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.evaluate(f"Boolean({ready})"):
                return
            time.sleep(0.5)
        raise AssertionError(f"{url}: not ready after {timeout} s ({ready})")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Stop Chromium and its helper processes (they write into the profile until they end), then remove it."""
        self._socket.close()
        os.killpg(self._process.pid, signal.SIGTERM)
        self._process.wait(30)
        for tick in range(100):  # helpers still there after 10 s are killed
            try:
                os.killpg(self._process.pid, signal.SIGKILL if tick == 50 else 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        self._profile.cleanup()
