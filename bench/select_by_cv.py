"""Choose training defaults by K-fold cross-validation on the TRAIN houses only (the test split
is never looked at). Prints each candidate's mean and spread of MAPE over the folds, and its R^2 per fold.
Usage: python bench/select_by_cv.py CANDIDATES.json [--data ../shared/datasets/houses] [--folds 3] [--tile-size 32]
       [--seeds 0,1] (training seeds; each candidate's figure is the mean over seeds and folds: one seed's CV
       moves by 3-5 points for the photo models)
CANDIDATES.json: {"name": {PriceOptions fields...}, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.common import run_stages  # noqa: E402
from tasks.core.splits import group_kfold_rows  # noqa: E402
from tasks.houses.arrays import read_split  # noqa: E402
from tasks.price.data import TargetScale  # noqa: E402
from tasks.price.options import PriceOptions  # noqa: E402
from tasks.price.train import predict_prices, train_model  # noqa: E402
from tasks.training.metrics import regression_metrics  # noqa: E402
from tasks.training.saved_models import load_keras_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "houses")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--tile-size", type=int, default=32, help="photo tile side (montage = 2x)")
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated (default 0)")
    args = parser.parse_args()
    candidates = json.loads(args.candidates.read_text())
    with tempfile.TemporaryDirectory(prefix="select-") as tmp:
        work = Path(tmp)
        run_stages(args.data, work / "cache", tile_size=args.tile_size)
        dataset = next((work / "cache" / "dataset").iterdir())
        encoders = json.loads((dataset / "encoders.json").read_text())
        groups = read_split(dataset / "train.parquet", ("group",))["group"]  # a duplicate group in one fold
        for name, settings in candidates.items():
            started, per_seed, r2 = time.perf_counter(), [], []
            for seed in [int(s) for s in args.seeds.split(",")]:
                options = PriceOptions(**{"seed": seed, **settings})
                scale = TargetScale(options.target, encoders["price_max"])
                scores = []
                for i, (rows, held_out) in enumerate(group_kfold_rows(len(groups), args.folds, 0, groups)):
                    result = train_model(dataset / "train.parquet", encoders, options, work / f"{name}-{seed}-{i}",
                                         rows=rows)
                    model = load_keras_model(result.model_path)
                    actual, predicted = predict_prices(model, dataset / "train.parquet", options.strategy, scale,
                                                       held_out)
                    metrics = regression_metrics(actual, predicted)
                    scores.append(metrics["mape_mean"])
                    r2.append(metrics["r2"])
                per_seed.append(scores)
            means = [float(np.mean(scores)) for scores in per_seed]
            folds = "; ".join(", ".join(f"{s:.1f}" for s in scores) for scores in per_seed)
            print(f"{name}: CV MAPE {np.mean(means):.2f} (per seed {', '.join(f'{m:.2f}' for m in means)}; "
                  f"folds {folds}; R^2 {', '.join(f'{v:.3f}' for v in r2)}; {time.perf_counter() - started:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
