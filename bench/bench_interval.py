"""Prediction intervals and the leak-free split on the real data (362 houses, 25 % test, seed 42).

For each split, strategy and seed: the default model trained on the train houses, the interval calibrated the
way `train` does it (K fold models of the train houses, duplicate groups whole, their out-of-fold
|log(actual / predicted)|; split conformal), and on the test houses the MAPE, the level's coverage and the
mean width of the range. Splits: "leak-free" (duplicate records dropped, every duplicate group on one side:
what preprocess does now) and "tutorials" (no duplicate handling: the split the README's figures were measured
on before issue 27). Each row prints as it finishes.
Usage: python bench/bench_interval.py [--data ../shared/datasets/houses] [--seeds 1,2,3]
       [--strategies mlp,mixed] [--splits leak-free,tutorials] [--level 0.8] [--folds 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tasks.core.cache import Cache  # noqa: E402
from tasks.core.splits import group_kfold_rows  # noqa: E402
from tasks.houses.arrays import read_split  # noqa: E402
from tasks.houses.dataset import Dataset, build_dataset, straddling_groups  # noqa: E402
from tasks.houses.duplicates import dedupe  # noqa: E402
from tasks.houses.encoders import filter_zipcodes  # noqa: E402
from tasks.houses.ingest import ingest_houses  # noqa: E402
from tasks.houses.montages import build_montages  # noqa: E402
from tasks.price.data import TargetScale  # noqa: E402
from tasks.price.evaluate import calibration  # noqa: E402
from tasks.price.interval import interval_metrics  # noqa: E402
from tasks.price.options import PriceOptions, defaults_for  # noqa: E402
from tasks.price.train import predict_prices, train_model  # noqa: E402
from tasks.training.metrics import regression_metrics  # noqa: E402
from tasks.training.saved_models import load_keras_model  # noqa: E402


def dataset_for(data: Path, cache: Cache, split: str) -> tuple[Dataset, dict]:
    """The dataset of one split kind and what duplicate handling found (empty for the tutorials' split)."""
    houses = ingest_houses(data).houses
    found = {}
    if split == "leak-free":
        houses, duplicates = dedupe(cache, data, houses)
        found = duplicates.summary()
    kept = filter_zipcodes(houses, 25)
    dataset = build_dataset(cache, kept, build_montages(cache, data, kept, 32), 0.25, 42)
    return dataset, found


def measure(dataset: Dataset, options: PriceOptions, work: Path, folds: int, level: float) -> dict:
    encoders = dataset.encoders()
    scale = TargetScale(options.target, encoders["price_max"])
    result = train_model(dataset.train_path, encoders, options, work / "model")
    actual, predicted = predict_prices(load_keras_model(result.model_path), dataset.test_path, options.strategy,
                                       scale)
    groups = read_split(dataset.train_path, ("group",))["group"]
    fold_list = group_kfold_rows(dataset.n_train, folds, options.seed, groups)
    fold_models = [train_model(dataset.train_path, encoders, options, work / f"fold-{i}", rows=fit).model_path
                   for i, (fit, _) in enumerate(fold_list)]
    interval = calibration(fold_models, dataset, options, fold_list)
    return {**regression_metrics(actual, predicted), **interval_metrics(interval, actual, predicted, level),
            "median_score_oof": float(np.median(interval.scores)),
            "median_score_test": float(np.median(np.abs(np.log(actual / predicted))))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "houses")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--strategies", default="mlp,mixed")
    parser.add_argument("--splits", default="leak-free,tutorials")
    parser.add_argument("--level", type=float, default=0.8)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-interval-") as tmp:
        work = Path(tmp)
        cache = Cache(work / "cache")
        print(f"level {args.level:g}, {args.folds} calibration folds, seeds {seeds}; test MAPE (%), coverage (%), "
              "mean width ($ and % of the price)")
        print("| split | strategy | seed | train | test | MAPE | coverage | mean width | width / price | "
              "median abs log error: out of fold / test | seconds |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for split in args.splits.split(","):
            dataset, found = dataset_for(args.data, cache, split)
            if found:
                print(f"<!-- {split}: duplicate summary {found}; groups straddling train/test: "
                      f"{straddling_groups(dataset)} -->", flush=True)
            for strategy in args.strategies.split(","):
                rows = []
                for seed in seeds:
                    started = time.perf_counter()
                    options = PriceOptions(**{**defaults_for(strategy), "strategy": strategy, "seed": seed})
                    m = measure(dataset, options, work / f"{split}-{strategy}-{seed}", args.folds, args.level)
                    rows.append(m)
                    print(f"| {split} | {strategy} | {seed} | {dataset.n_train} | {dataset.n_test} | "
                          f"{m['mape_mean']:.2f} | {m['coverage'] * 100:.1f} | ${m['mean_width']:,.0f} | "
                          f"{m['mean_width_pct']:.1f} | {m['median_score_oof']:.3f} / {m['median_score_test']:.3f} | "
                          f"{time.perf_counter() - started:.0f} |", flush=True)
                print(f"| {split} | {strategy} | **mean** | {dataset.n_train} | {dataset.n_test} | "
                      f"**{np.mean([r['mape_mean'] for r in rows]):.2f}** | "
                      f"**{np.mean([r['coverage'] for r in rows]) * 100:.1f}** | "
                      f"${np.mean([r['mean_width'] for r in rows]):,.0f} | "
                      f"{np.mean([r['mean_width_pct'] for r in rows]):.1f} | "
                      f"{np.mean([r['median_score_oof'] for r in rows]):.3f} / "
                      f"{np.mean([r['median_score_test'] for r in rows]):.3f} | |", flush=True)


if __name__ == "__main__":
    main()
