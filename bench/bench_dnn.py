"""Images per second of the stylize flow on 100 photos at width 600 with a small network (the toy
3x3-conv net, 3 -> 16 -> 16 -> 3), one worker (sequential) vs the flow's parallel mode (2 workers,
OpenCV's threads split between them), plus a plain loop without Prefect as the floor of overhead.
The three are run in turn `--repeats` times (the cores are shared, so figures vary between
rounds); each round's figures are printed and the medians compared.

    .venv/bin/python bench/bench_dnn.py [--images 100] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def make_photos(count: int, folder: Path) -> list[Path]:
    """`count` house photos upscaled to 600 px wide (the default data is compact: 160 px)."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((ROOT / "data" / "houses").glob("*_frontal.jpg"))[:count]
    paths = []
    for source in sources:
        target = folder / source.name
        if not target.exists():
            image = cv2.imread(str(source))
            height = round(image.shape[0] * 600 / image.shape[1])
            cv2.imwrite(str(target), cv2.resize(image, (600, height), interpolation=cv2.INTER_CUBIC))
        paths.append(target)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from flows.config import StylizeConfig
    from flows.dnn import stylize_flow
    from tasks.dnn.net import read_net
    from tasks.dnn.stylize import stylize
    from tasks.dnn.toy_networks import conv_net

    work = ROOT / "runs" / "bench-dnn"
    photos = make_photos(args.images, work / "photos")
    model = conv_net(work / "conv16.onnx")
    print(f"{len(photos)} photos at width 600, network {model.name} (3x3 convs 3 -> 16 -> 16 -> 3), "
          f"{os.cpu_count()} CPU cores, OpenCV {cv2.__version__}; load average {os.getloadavg()[0]:.2f}")

    def plain_loop() -> float:
        net = read_net(model)
        start = time.perf_counter()
        for path in photos:
            image = cv2.imread(str(path))
            cv2.imencode(".jpg", stylize(net, image, 600))
        return len(photos) / (time.perf_counter() - start)

    def run(workers: int, images: str, tag: str) -> float:
        cache = work / f"cache-{tag}"
        shutil.rmtree(cache, ignore_errors=True)  # every image computed, none reused
        summary = stylize_flow(StylizeConfig(input=images, model=model, out=work / f"out-{tag}", cache=cache,
                                             width=600, workers=workers))
        assert summary["done"] == summary["images"], summary
        return summary["images_per_second"]

    run(1, str(photos[0]), "warmup")  # the temporary Prefect server starts here, outside the timings
    rounds = []
    for _ in range(args.repeats):
        rounds.append((plain_loop(), run(1, str(work / "photos"), "sequential"),
                       run(args.workers, str(work / "photos"), "parallel")))
    for i, (plain, sequential, parallel) in enumerate(rounds, start=1):
        print(f"round {i}: plain loop {plain:.2f}, flow 1 worker {sequential:.2f}, flow {args.workers} workers "
              f"{parallel:.2f} images/s")
    plain, sequential, parallel = (statistics.median(column) for column in zip(*rounds))
    print(f"median of {args.repeats} rounds:")
    print(f"plain loop, no Prefect, no cache: {plain:.2f} images/s")
    print(f"stylize flow, 1 worker (sequential): {sequential:.2f} images/s ({sequential / plain:.2f}x the plain loop)")
    print(f"stylize flow, {args.workers} workers (parallel):  {parallel:.2f} images/s")
    print(f"ratio parallel / sequential: {parallel / sequential:.2f}x (load average now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
