"""What the flow's two malloc arenas (tasks/core/allocator.py) cost the trainings that run in the flow's process:
the mixed model trained with `fit` and with `stream` on the real data, in a fresh process each time, with glibc's
default arenas (8 per core) and with two (MALLOC_ARENA_MAX=2, what flow commands set), rounds alternating.
Prints each trainer's samples/s over epochs 2..N and the process's peak memory, and the ratio of two arenas to
the default. (What the limit buys, the flow's peak memory in preprocessing at 5,000 and 50,000 houses, is in
bench_scale.py's memory lines.)

Usage: python bench/bench_arenas.py [--data ../shared/datasets/houses] [--epochs 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETTINGS = {"default arenas": None, "2 arenas": "2"}
TRAINERS = ("fit", "stream")


def child(dataset: Path, trainer: str, epochs: int, work: Path) -> None:
    """One training in this process; prints samples/s over epochs 2..N and this process's peak resident MiB."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from bench.bench_train import time_trainer
    from tasks.price.options import PriceOptions

    encoders = json.loads((dataset / "encoders.json").read_text())
    options = PriceOptions(strategy="mixed", trainer=trainer, epochs=epochs, batch_size=8)
    rate, _ = time_trainer(dataset, encoders, options, work)
    print(json.dumps({"rate": rate, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "houses")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("DATASET", "TRAINER", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], args.epochs, Path(args.child[2]))
        return

    from bench.common import run_stages

    with tempfile.TemporaryDirectory(prefix="bench-arenas-") as tmp:
        work = Path(tmp)
        stages = run_stages(args.data, work / "cache")
        dataset = next((work / "cache" / "dataset").iterdir())
        print(f"mixed model, batch size 8, {args.epochs} epochs, {stages['houses']} houses; samples/s over epochs "
              f"2..{args.epochs}, each training in a fresh process; {args.rounds} alternating rounds", flush=True)
        results: dict[tuple[str, str], list[dict]] = {}
        base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
        for round_ in range(args.rounds):
            for trainer in TRAINERS:
                for setting, arenas in SETTINGS.items():
                    env = {**base, **({"MALLOC_ARENA_MAX": arenas} if arenas else {})}
                    done = subprocess.run([sys.executable, __file__, "--epochs", str(args.epochs), "--child",
                                           str(dataset), trainer, str(work / f"{trainer}-{round_}-{arenas}")],
                                          env=env, capture_output=True, text=True, check=True)
                    measured = json.loads(done.stdout.strip().splitlines()[-1])
                    results.setdefault((trainer, setting), []).append(measured)
                    print(f"  round {round_ + 1} {trainer:>6} {setting:>14}: {measured['rate']:7.1f} samples/s, "
                          f"peak {measured['peak_mib']:.0f} MiB", flush=True)
        print("| trainer | arenas | samples/s (median of rounds) | ratio to default | peak MiB (median) |")
        print("|---|---|---:|---:|---:|")
        for trainer in TRAINERS:
            default = median([r["rate"] for r in results[(trainer, "default arenas")]])
            for setting in SETTINGS:
                rates = [r["rate"] for r in results[(trainer, setting)]]
                peaks = [r["peak_mib"] for r in results[(trainer, setting)]]
                print(f"| {trainer} | {setting} | {median(rates):.1f} | {median(rates) / default:.2f}x | "
                      f"{median(peaks):.0f} |")


if __name__ == "__main__":
    main()
