"""Flow overhead: `python -m flows train` against a running Prefect server with a warm
preprocessing cache. Reads the run back from the API and compares the flow run's wall time
with the train task's (data loading + training + checkpoints). Usage:
    python bench/bench_flow_overhead.py [--data ../shared/datasets/houses] [--epochs 200] [--strategy mixed]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"Prefect server at {url} did not answer within {seconds} s")


async def run_durations(api: str, flow_run_name: str) -> tuple[float, dict[str, float]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, TaskRunFilter
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api}):
        async with get_client() as client:
            name_filter = FlowRunFilter(name=FlowRunFilterName(like_=flow_run_name))
            runs = await client.read_flow_runs(flow_run_filter=name_filter)
            run = max(runs, key=lambda r: r.start_time)  # the timed run, after the warm-up
            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [run.id]}),
                                                task_run_filter=TaskRunFilter())
            per_task = {}
            for task in tasks:
                name = task.name.rsplit("-", 1)[0]
                per_task[name] = per_task.get(name, 0.0) + (task.end_time - task.start_time).total_seconds()
            return (run.end_time - run.start_time).total_seconds(), per_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "houses"))
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--strategy", default="mixed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-flow-") as tmp:
        work = Path(tmp)
        port = free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {**os.environ, "PREFECT_HOME": str(work / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "PREFECT_API_URL": api, "TF_CPP_MIN_LOG_LEVEL": "2"}
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                   "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(api)
            common = ["--data", args.data, "--cache", str(work / "cache"), "--strategy", args.strategy]
            # Warm the preprocessing cache (a short run), then time a full run with a new training seed.
            subprocess.run([sys.executable, "-m", "flows", "train", *common, "--epochs", "1", "--out",
                            str(work / "warm")], env=env, check=True, cwd=ROOT, capture_output=True)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "flows", "train", *common, "--epochs", str(args.epochs),
                            "--seed", "7", "--out", str(work / "run")], env=env, check=True, cwd=ROOT,
                           capture_output=True)
            process_wall = time.perf_counter() - started
            flow_wall, tasks = asyncio.run(run_durations(api, f"train-{args.strategy}-fit-%"))
        finally:
            server.terminate()
            server.wait(30)
    train = tasks.get("train", 0.0)
    print(f"train flow, {args.strategy}, {args.epochs} epochs, warm preprocessing cache, running Prefect server:")
    print(f"  CLI process wall time {process_wall:.1f} s (includes Python, TensorFlow and Prefect imports)")
    print(f"  flow run wall time    {flow_wall:.1f} s; task time: " +
          ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(tasks.items())))
    outside = flow_wall - train
    print(f"  outside data loading and training: {outside:.2f} s = {100 * outside / flow_wall:.1f} % "
          f"of the flow run ({100 * (process_wall - train) / process_wall:.1f} % of the whole process)")


if __name__ == "__main__":
    main()
