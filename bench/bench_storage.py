"""What object storage costs: the default pipeline (`train` on data/houses) with its cache and run folder on a
local disk, then on an S3 endpoint (moto_server on 127.0.0.1, started here), side by side in one run: a cold run,
a cached re-run on the same machine, and for S3 a cached re-run from another machine (an empty mirror). Every
command reports to one Prefect server started here (no temporary server in the timings). Prints the seconds of
each command, the flow run's own seconds (from its first to its last log line), the expensive tasks' states
and the ratio of the S3 cached re-run to the local one.

Usage: python bench/bench_storage.py [--data data/houses] [--epochs 20] [--strategy mixed] [--rounds 3]
moto keeps objects in memory on this machine: its latency is a LAN's, not a region's; the requests counted are
what a real store would bill.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import servers  # noqa: E402

EXPENSIVE = ("build-montages", "build-dataset", "train")


def run(args: list[str], env: dict) -> dict:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    output = done.stdout + done.stderr
    stamps = [datetime.strptime(m, "%H:%M:%S.%f") for m in re.findall(r"^(\d\d:\d\d:\d\d\.\d{3}) \|", output, re.M)
              if m]
    states = {}
    for line in output.splitlines():
        if "Task run '" in line and "Finished in state" in line:
            name = line.split("Task run '")[1].split("'")[0].rsplit("-", 1)[0]
            states[name] = line.split("Finished in state ")[1].split("(")[0]
    flow = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else float("nan")
    return {"seconds": seconds, "flow": flow, "states": "/".join(states.get(n, "-") for n in EXPENSIVE)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT / "data" / "houses"))
    parser.add_argument("--epochs", type=int, default=20, help="training epochs (the model file is what is stored)")
    parser.add_argument("--strategy", default="mixed")
    parser.add_argument("--rounds", type=int, default=3, help="cached re-runs measured per setting (median)")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    moto = servers.moto_server(work / "moto").start(timeout=60)
    prefect = servers.prefect_server(work / "prefect").start()
    base = {**os.environ, **servers.s3_env(moto), "PREFECT_API_URL": servers.api_url(prefect),
            "HOUSE_PIPELINE_TRACKING": "off", "HOUSE_PIPELINE_HOME": str(work / "home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        import s3fs

        s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=base["AWS_ENDPOINT_URL"]).mkdir("bench")
        train = ["train", "--data", options.data, "--strategy", options.strategy, "--epochs", str(options.epochs)]
        rows = []
        for where, cache, out in (("local disk", str(work / "cache"), str(work / "runs" / "train")),
                                  ("S3 (moto)", "s3://bench/cache", "s3://bench/runs/train")):
            env = {**base, "HOUSE_PIPELINE_MIRROR": str(work / "mirror-a")}
            args = [*train, "--cache", cache, "--out", out]
            rows.append((where, "cold run", run(args, env)))
            cached = [run(args, env) for _ in range(options.rounds)]
            rows.append((where, "cached re-run", _median(cached)))
            if where.startswith("S3"):
                other = [run(args, {**base, "HOUSE_PIPELINE_MIRROR": str(work / f"mirror-{i}")})
                         for i in range(options.rounds)]
                rows.append((where, "cached, another machine", _median(other)))
        print(f"| cache and --out | run | command s | flow run s | {'/'.join(EXPENSIVE)} |")
        print("|---|---|---|---|---|")
        for where, what, row in rows:
            print(f"| {where} | {what} | {row['seconds']:.1f} | {row['flow']:.1f} | {row['states']} |")
        local = next(r for w, k, r in rows if w == "local disk" and k == "cached re-run")
        remote = next(r for w, k, r in rows if w != "local disk" and k == "cached re-run")
        other = next(r for w, k, r in rows if k == "cached, another machine")
        print(f"\nS3 cached re-run / local cached re-run: {remote['flow'] / local['flow']:.2f}x flow run, "
              f"{remote['seconds'] / local['seconds']:.2f}x command (target <= 3x); from another machine: "
              f"{other['flow'] / local['flow']:.2f}x flow run")
    finally:
        prefect.stop()
        moto.stop()


def _median(results: list[dict]) -> dict:
    return {"seconds": statistics.median(r["seconds"] for r in results),
            "flow": statistics.median(r["flow"] for r in results),
            "states": ",".join(sorted({r["states"] for r in results}))}


if __name__ == "__main__":
    main()
