"""Small generated Houses-format datasets: a few houses, tiny photos, in a temporary folder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np

from tasks.core.cache import Cache
from tasks.houses.dataset import build_dataset
from tasks.houses.encoders import filter_zipcodes
from tasks.houses.ingest import PHOTO_KINDS, ingest_houses
from tasks.houses.montages import build_montages

# One flat BGR colour per photo kind, so a montage's quadrants can be told apart.
KIND_COLORS = {"bathroom": (255, 0, 0), "bedroom": (0, 255, 0), "frontal": (0, 0, 255), "kitchen": (0, 255, 255)}


def write_photo(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (48, 40), noise: int = 0,
                seed: int = 0) -> None:
    height, width = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = color
    if noise:
        rng = np.random.default_rng(seed)
        image = np.clip(image.astype(int) + rng.integers(-noise, noise + 1, image.shape), 0, 255).astype(np.uint8)
    ok = cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok, path


def make_houses(folder: Path, zipcodes: list[int], photo_size: tuple[int, int] = (48, 40),
                csv: bool = False) -> Path:
    """One house per entry of `zipcodes`; prices and areas vary with the house number."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for number, zipcode in enumerate(zipcodes, start=1):
        bedrooms, bathrooms, area, price = 1 + number % 5, 1 + number % 3, 1000 + 37 * number, 100000 + 5000 * number
        lines.append((bedrooms, bathrooms, area, zipcode, price))
        for kind in PHOTO_KINDS:
            write_photo(folder / f"{number}_{kind}.jpg", KIND_COLORS[kind], photo_size, noise=20,
                        seed=4 * number + PHOTO_KINDS.index(kind))  # distinct noise: no two photos alike
    if csv:
        rows = ["bedrooms,bathrooms,area,zipcode,price"] + [",".join(map(str, line)) for line in lines]
        (folder / "houses.csv").write_text("\n".join(rows) + "\n")
    else:
        (folder / "HousesInfo.txt").write_text("".join(" ".join(map(str, line)) + "\n" for line in lines))
    return folder


def small_zipcodes() -> list[int]:
    """12 houses: zip 90001 x5, 90002 x4, 90003 x2, 90004 x1 (min 3 keeps 9 houses in 2 zips)."""
    return [90001, 90002, 90001, 90003, 90002, 90001, 90004, 90002, 90001, 90003, 90002, 90001]


def run_stages(data: Path, cache_dir: Path, tile_size=16, test_size=0.25, min_houses=3, on_bad_house="fail"):
    cache = Cache(cache_dir)
    ingested = ingest_houses(data, on_bad_house)
    kept = filter_zipcodes(ingested.houses, min_houses)
    montages = build_montages(cache, data, kept, tile_size, on_bad_house)
    return montages, build_dataset(cache, kept, montages, test_size, 42)


def client_call(prefect_api: str, call):
    """`await call(client)` with a Prefect client of the API at `prefect_api`; its result."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def run():
        async with get_client() as client:
            return await call(client)

    with temporary_settings({PREFECT_API_URL: prefect_api}):
        return asyncio.run(run())


def read_artifact(prefect_api: str, key: str):
    """The newest artifact with this key, read back through the Prefect client."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    found = client_call(prefect_api, lambda client: client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC, limit=1))
    return found[0]


def checkpoint_state(folder: Path) -> dict | None:
    """The state of the last finished epoch in a training work folder, if any."""
    from tasks.training.engine import CHECKPOINT, Checkpoint

    return Checkpoint.load(folder / CHECKPOINT).state if (folder / CHECKPOINT).is_file() else None


def assert_plot(path: Path, min_width: int = 200) -> np.ndarray:
    """A plot that decodes as a PNG of a sensible size with something drawn on it (not one flat colour)."""
    image = cv2.imread(str(path))
    assert image is not None, f"{path} does not decode as an image"
    assert image.shape[1] >= min_width and image.shape[0] >= min_width // 3, f"{path}: {image.shape}"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 8, f"{path} is (nearly) blank"
    return image


def task_runs(prefect_api: str, since, name_prefix: str, state: str = "Completed") -> list:
    """The task runs in state `state` (its name: Completed, TimedOut, ...) whose name starts with
    `name_prefix` and that started after `since` (a timezone-aware datetime), read through the client."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterStartTime

    runs = client_call(prefect_api, lambda client: client.read_task_runs(
        task_run_filter=TaskRunFilter(start_time=TaskRunFilterStartTime(after_=since))))
    return [run for run in runs if run.name.startswith(name_prefix) and run.state and run.state.name == state]


def overlap_seconds(runs: list) -> float:
    """How long the busiest two of these task runs ran at the same time (0 when they ran one after another)."""
    spans = sorted((run.start_time, run.end_time) for run in runs)
    best = 0.0
    for i, (start_a, end_a) in enumerate(spans):
        for start_b, end_b in spans[i + 1:]:
            best = max(best, (min(end_a, end_b) - max(start_a, start_b)).total_seconds())
    return best


def kill_after_epoch(command: list, work: Path, epoch: int, env: dict, timeout: float = 180) -> int:
    """Start a training script, SIGKILL it once its checkpoint in `work` has passed `epoch`; the epoch its
    checkpoint holds after the kill."""
    import signal
    import subprocess
    import time

    from tests.conftest import ROOT

    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        state = checkpoint_state(work) if work.is_dir() else None
        if state and state["epoch"] >= epoch:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return checkpoint_state(work)["epoch"]


def resumed_run(command: list, env: dict) -> dict[str, int]:
    """Run a training script to the end; the `NAME value` pairs it prints (RESUMED_FROM, EPOCHS, HISTORY)."""
    import subprocess

    from tests.conftest import ROOT

    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    words = finished.stdout.split()
    return {name: int(words[words.index(name) + 1]) for name in ("RESUMED_FROM", "EPOCHS", "HISTORY")}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str):
    """The first truthy result of `check()` (exceptions count as not yet), polled until `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=2) as answer:
        return answer.status == 200
