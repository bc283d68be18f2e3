"""Wall time of a 4-point AutoML sweep on the real data: one after another in-process vs a local
Dask cluster of 2 single-threaded workers. Each mode runs the real `python -m flows sweep` in its
own process on the same warm preprocessing cache, with the AutoML points removed between modes so
every mode searches all 4 points. Points are bound by trials x epochs (generous time limits), so
they are CPU-bound.
Usage: python bench/bench_sweep.py [--data ../shared/datasets/houses] [--task mixed] [--budgets ...]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "sequential, TensorFlow's default threads": [],
    "sequential, 1 TensorFlow thread": ["--threads-per-point", "1"],
    "Dask LocalCluster, 2 workers x 1 thread": ["--workers", "2", "--threads-per-point", "1"],
}


def run_sweep(args: argparse.Namespace, cache: Path, out: Path, extra: list[str]) -> float:
    command = [sys.executable, "-m", "flows", "sweep", "--data", str(args.data), "--cache", str(cache),
               "--out", str(out), "--tasks", args.task, "--budgets", args.budgets, "--no-hand-built", *extra]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"sweep failed ({' '.join(command)}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "houses")
    parser.add_argument("--task", default="mixed")
    parser.add_argument("--budgets", default="900s:2x8,900s:2x9,900s:2x10,900s:2x11")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        print(f"{args.task} sweep, budgets {args.budgets}, data {args.data}; {os.cpu_count()} CPU cores")
        subprocess.run([sys.executable, "-m", "flows", "preprocess", "--data", str(args.data), "--cache", str(cache),
                        "--out", str(work / "pre")], cwd=ROOT, check=True, capture_output=True)
        results = {}
        for i, (name, extra) in enumerate(MODES.items()):
            for stage in ("automl", "automl-work"):
                shutil.rmtree(cache / stage, ignore_errors=True)
            seconds = run_sweep(args, cache, work / f"out{i}", extra)
            rows = list(csv.DictReader((work / f"out{i}" / "leaderboard.csv").open()))
            assert all(row["reused"] == "False" for row in rows) and len(rows) == len(args.budgets.split(","))
            point_seconds = sum(float(row["seconds"]) for row in rows)
            results[name] = seconds
            scores = ", ".join(f"{float(row['score']):.1f}" for row in rows)
            print(f"  {name:<42} wall {seconds:7.1f} s   (sum of the points' search times {point_seconds:7.1f} s; "
                  f"test MAPE {scores})", flush=True)
        names = list(MODES)
        for name in names[:2]:
            print(f"  speed-up of the Dask cluster vs {name}: {results[name] / results[names[2]]:.2f}x")


if __name__ == "__main__":
    main()
