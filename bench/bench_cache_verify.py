"""What verifying the cache costs: a cached re-run of the default pipeline (data/houses: ingest, the
montage shards, the dataset, the trained default model) with every cached file's sha256 checked, next
to the same re-run checking only that each file is there with its size (the check before content was
verified). Medians of several rounds, alternating, in one process.
Usage: python bench/bench_cache_verify.py [--data data/houses] [--rounds 7]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tasks.core import cache as cache_module  # noqa: E402
from tasks.core.cache import Cache  # noqa: E402
from tasks.houses.dataset import build_dataset  # noqa: E402
from tasks.houses.encoders import filter_zipcodes  # noqa: E402
from tasks.houses.ingest import ingest_houses  # noqa: E402
from tasks.houses.montages import build_montages  # noqa: E402
from tasks.price.options import PriceOptions  # noqa: E402
from tasks.price.train import train_model  # noqa: E402
from tasks.training import progress  # noqa: E402
from tasks.training.progress import reuse_or_train  # noqa: E402

LOG = logging.getLogger("bench")


def run(data: Path, cache_dir: Path, filled: bool = True) -> dict[str, float]:
    """The default pipeline's stages (against a filled cache unless `filled` is False); seconds per stage."""
    cache, times = Cache(cache_dir, LOG), {}
    start = time.perf_counter()
    ingested = ingest_houses(data)
    kept = filter_zipcodes(ingested.houses, 25)
    times["ingest (hash every input)"] = time.perf_counter() - start
    start = time.perf_counter()
    montages = build_montages(cache, data, kept, 32, log=LOG)
    dataset = build_dataset(cache, kept, montages, 0.25, 42)
    times["montages + dataset lookups"] = time.perf_counter() - start
    start = time.perf_counter()
    folder = cache_dir / "train" / "default"
    options = PriceOptions(epochs=1)  # the file sizes (what verifying costs) do not depend on the epochs
    reuse_or_train(folder, "model", lambda: train_model(dataset.train_path, dataset.encoders(), options, folder), LOG)
    times["trained model lookup"] = time.perf_counter() - start
    assert not filled or (montages.computed == 0 and not dataset.computed), "the cache should be filled"
    times["total"] = sum(times.values())
    return times


def size_only(folder: Path) -> str | None:
    """The lookup before this change: each listed file there, with its size."""
    import json

    files = json.loads((folder / cache_module.ENTRY_FILE).read_text())["files"]
    for name, item in files.items():
        if not (folder / name).is_file() or (folder / name).stat().st_size != item["size"]:
            return f"{name} changed"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "houses")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        cache_dir = Path(tmp) / "cache"
        first = time.perf_counter()
        run(args.data, cache_dir, filled=False)
        print(f"cache filled in {time.perf_counter() - first:.1f} s; "
              f"{sum(p.stat().st_size for p in cache_dir.rglob('*') if p.is_file()) / 2**20:.1f} MiB in it")
        results: dict[str, list[dict]] = {"sha256 verified": [], "size only": []}
        for round_ in range(args.rounds):  # alternating which goes first
            for kind in (list(results) if round_ % 2 == 0 else list(results)[::-1]):
                if kind == "sha256 verified":
                    results[kind].append(run(args.data, cache_dir))
                    continue
                with mock.patch.object(cache_module, "damage", size_only), \
                        mock.patch.object(progress, "finished_training", _finished_unchecked):
                    results[kind].append(run(args.data, cache_dir))
        print(f"cached re-run of the default pipeline's stages, median of {args.rounds} rounds (seconds):")
        stages = list(results["sha256 verified"][0])
        print(f"| stage | {' | '.join(results)} |\n|---|---|---|")
        medians = {kind: {s: statistics.median(r[s] for r in runs) for s in stages} for kind, runs in results.items()}
        for stage in stages:
            print(f"| {stage} | " + " | ".join(f"{medians[kind][stage]:.3f}" for kind in results) + " |")
        lookups = ("montages + dataset lookups", "trained model lookup")
        verified, unchecked = (sum(medians[kind][s] for s in lookups) for kind in results)
        print(f"cache lookups: {1000 * verified:.0f} ms verified vs {1000 * unchecked:.0f} ms size only "
              f"(ratio {verified / unchecked:.2f}x): verifying costs {1000 * (verified - unchecked):.0f} ms of a "
              f"{medians['sha256 verified']['total']:.3f} s cached re-run")


def _finished_unchecked(folder: Path):
    """The trained-model lookup before this change: done.json and model.keras there."""
    import json

    done = folder / "done.json"
    if done.is_file() and (folder / "model.keras").is_file():
        return json.loads(done.read_text()), None
    return None, None


if __name__ == "__main__":
    main()
