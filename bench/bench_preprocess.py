"""Preprocessing speed and memory, measured side by side in one run.

1. Cold cache on the full-size real dataset vs the tutorials' plain loop (cv2.imread then
   cv2.resize per photo, one after another), on the same houses; montage agreement.
2. A cached re-run: seconds of task work.
3. Scaling: generated datasets of 2,000 and 20,000 houses, each preprocessed in a fresh
   process: wall time, time per house, peak memory (max RSS).

Usage: python bench/bench_preprocess.py [--data ../shared/datasets/houses] [--sizes 2000,20000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import run_stages, tutorial_montage  # noqa: E402
from tasks.houses.encoders import filter_zipcodes  # noqa: E402
from tasks.houses.ingest import PHOTO_KINDS, ingest_houses  # noqa: E402
from tasks.houses.montage import tile_montage  # noqa: E402
from tasks.houses.montages import iter_montages  # noqa: E402


def tutorial_loop(data: Path, houses: list[int]) -> dict[int, np.ndarray]:
    return {n: tutorial_montage([data / f"{n}_{kind}.jpg" for kind in PHOTO_KINDS]) for n in houses}


def full_decode_area(data: Path, house: int) -> np.ndarray:
    """Full decode + INTER_AREA: isolates the effect of reduced-scale decoding."""
    tiles = [cv2.resize(cv2.imread(str(data / f"{house}_{k}.jpg")), (32, 32), interpolation=cv2.INTER_AREA)
             for k in PHOTO_KINDS]
    return tile_montage(tiles, 32)


def cold_vs_tutorial(data: Path, work: Path, min_houses: int, rounds: int) -> None:
    houses = filter_zipcodes(ingest_houses(data).houses, min_houses)["house"].tolist()
    label = f"min-houses-per-zip {min_houses}: {len(houses)} houses, {4 * len(houses)} JPEGs"
    for path in data.iterdir():  # same (warm) page-cache state for both sides
        path.read_bytes()
    tutorial_times, our_times, montage_times = [], [], []
    for round_ in range(rounds):  # alternate the two sides: this machine's speed drifts
        start = time.perf_counter()
        reference = tutorial_loop(data, houses)
        tutorial_times.append(time.perf_counter() - start)
        cache_dir = work / f"cold-{min_houses}-{round_}"
        ours = run_stages(data, cache_dir, min_houses=min_houses)
        our_times.append(ours["seconds"]["total"])
        montage_times.append(ours["seconds"]["montages"])
    montages = dict(iter_montages([Path(s) for s in ours["shards"]], 32))
    diff_tutorial = np.mean([np.abs(montages[n].astype(int) - reference[n]).mean() for n in houses])
    sample = houses[:: max(1, len(houses) // 50)]
    diff_area = np.mean([np.abs(montages[n].astype(int) - full_decode_area(data, n)).mean() for n in sample])
    s = ours["seconds"]
    med = statistics.median
    print(f"\n[cold cache, {label}; warm page cache for both sides; {rounds} alternating rounds]")
    print(f"  tutorial loop (imread + resize, sequential): median {med(tutorial_times):6.2f} s  "
          f"(rounds: {', '.join(f'{t:.2f}' for t in tutorial_times)})")
    print(f"  ours, all stages:                            median {med(our_times):6.2f} s  "
          f"(rounds: {', '.join(f'{t:.2f}' for t in our_times)})")
    print(f"    last round: ingest+hash {s['ingest']:.2f} s, montages {s['montages']:.2f} s, "
          f"dataset {s['dataset']:.2f} s")
    ratios = [t / o for t, o in zip(tutorial_times, our_times)]
    print(f"  speed-up, all stages vs tutorial loop: median {med(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}); montage stage alone: "
          f"{med(t / m for t, m in zip(tutorial_times, montage_times)):.2f}x")
    print(f"  montage mean |difference| (0-255): vs tutorial {diff_tutorial:.2f}, "
          f"vs full decode + INTER_AREA {diff_area:.2f}")
    again = run_stages(data, cache_dir, min_houses=min_houses)
    assert again["montages_built"] == 0 and not again["dataset_built"]
    a = again["seconds"]
    print(f"[cached re-run] task work {a['total']:.3f} s (ingest+hash {a['ingest']:.3f}, "
          f"montages {a['montages']:.3f}, dataset {a['dataset']:.3f}); "
          f"ratio to cold {a['total'] / s['total']:.3f}")


def generate_dataset(folder: Path, houses: int, seed: int = 0) -> None:
    """Houses-format data: 10 zip codes, photos drawn from a pool of 64 distinct 320x240 JPEGs."""
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(64):
        image = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3)).astype(np.uint8), (0, 0), 4)
        pool.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    folder.mkdir(parents=True)
    lines = []
    for n in range(1, houses + 1):
        lines.append(f"{rng.integers(1, 6)} {rng.integers(1, 4)} {rng.integers(800, 5000)} "
                     f"{90000 + n % 10} {rng.integers(100_000, 2_000_000)}\n")
        for i, kind in enumerate(PHOTO_KINDS):
            (folder / f"{n}_{kind}.jpg").write_bytes(pool[(n * 4 + i) % len(pool)])
    (folder / "HousesInfo.txt").write_text("".join(lines))


CHILD = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from bench.common import run_stages
start = time.perf_counter()
result = run_stages(__import__('pathlib').Path({data!r}), __import__('pathlib').Path({cache!r}))
wall = time.perf_counter() - start
print(json.dumps({{"wall": wall, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "houses": result["houses"], "seconds": result["seconds"]}}))
"""


def scaling(work: Path, sizes: list[int]) -> None:
    print("\n[scaling: generated data, each size in a fresh process, cold cache]")
    rows = []
    for size in sizes:
        data = work / f"gen-{size}"
        start = time.perf_counter()
        generate_dataset(data, size)
        generated = time.perf_counter() - start
        code = CHILD.format(root=str(ROOT), data=str(data), cache=str(work / f"cache-{size}"))
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        rows.append((size, result))
        print(f"  {size:6d} houses ({4 * size} photos, generated in {generated:.0f} s): "
              f"{result['wall']:7.2f} s, {1000 * result['wall'] / size:.2f} ms/house, "
              f"peak RSS {result['maxrss_kib'] / 2**20:.2f} GiB")
        shutil.rmtree(data)
        shutil.rmtree(work / f"cache-{size}")
    if len(rows) >= 2:
        (small, a), (large, b) = rows[0], rows[-1]
        print(f"  time ratio {large}/{small} houses: {b['wall'] / a['wall']:.2f} "
              f"(linear would be {large / small:.1f}); peak memory ratio {b['maxrss_kib'] / a['maxrss_kib']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "houses")
    parser.add_argument("--sizes", default="2000,20000", help="generated dataset sizes ('' to skip)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the real-data comparison")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; OpenCV {cv2.__version__}; data: {args.data}")
    with tempfile.TemporaryDirectory(prefix="bench-preprocess-") as tmp:
        work = Path(tmp)
        if (args.data / "HousesInfo.txt").is_file():
            cold_vs_tutorial(args.data, work, 25, args.rounds)
            cold_vs_tutorial(args.data, work, 1, args.rounds)
        else:
            print(f"skipping the real-data part: {args.data} not found")
        if args.sizes:
            scaling(work, [int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
