"""Quality on the real data with the tutorials' split (362 houses, 25 % test, seed 42): the
tutorials' own recipe (their architecture and settings, 200 epochs) against this project's
defaults, for each strategy, as the mean of several training seeds. Test-set numbers only; the
defaults were chosen by cross-validation on the train houses (bench/select_by_cv.py).
Usage: python bench/bench_quality.py [--data ../shared/datasets/houses] [--seeds 1,2,3] [--strategies mlp,cnn,mixed]
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

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bench.common import run_stages  # noqa: E402
from tasks.price.data import TargetScale  # noqa: E402
from tasks.price.options import PriceOptions, defaults_for  # noqa: E402
from tasks.price.train import predict_prices, train_model  # noqa: E402
from tasks.training.metrics import regression_metrics  # noqa: E402

# The tutorials: price / train max, MAPE loss, Adam(1e-3, decay=1e-3/200), batch 8, 200 epochs,
# the test set only watched (no validation share taken from train, no early stopping).
REFERENCE = {"target": "scaled", "loss": "mape", "learning_rate": 1e-3, "batch_size": 8, "epochs": 200,
             "validation_fraction": 0.0, "early_stopping": None, "hidden": [8, 4], "dropout": 0.5}
TARGETS = {"mlp": 20.0, "cnn": 40.0, "mixed": 18.0}


def test_mape(dataset: Path, encoders: dict, options: PriceOptions, work: Path) -> float:
    result = train_model(dataset / "train.parquet", encoders, options, work)
    model = keras.models.load_model(result.model_path, safe_mode=True)
    actual, predicted = predict_prices(model, dataset / "test.parquet", options.strategy,
                                       TargetScale(options.target, encoders["price_max"]))
    return regression_metrics(actual, predicted)["mape_mean"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "houses")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--strategies", default="mlp,cnn,mixed")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        work = Path(tmp)
        run_stages(args.data, work / "cache")
        dataset = next((work / "cache" / "dataset").iterdir())
        encoders = json.loads((dataset / "encoders.json").read_text())
        print(f"real data, tutorials' split: {encoders['zipcodes'].__len__()} zip codes; test MAPE (%), "
              f"seeds {seeds}")
        print("| strategy | tutorials' recipe (mean of seeds) | ours, defaults (mean of seeds) | target | met |")
        print("|---|---|---|---|---|")
        for strategy in args.strategies.split(","):
            started = time.perf_counter()
            scores = {}
            for label, settings in (("reference", REFERENCE), ("ours", defaults_for(strategy))):
                scores[label] = [test_mape(dataset, encoders, PriceOptions(**{**settings, "strategy": strategy,
                                                                               "seed": seed}),
                                           work / f"{strategy}-{label}-{seed}") for seed in seeds]
            ref, ours = np.mean(scores["reference"]), np.mean(scores["ours"])
            met = ours <= TARGETS[strategy] and ours < ref
            print(f"| {strategy} | {ref:.2f} ({', '.join(f'{s:.1f}' for s in scores['reference'])}) | "
                  f"{ours:.2f} ({', '.join(f'{s:.1f}' for s in scores['ours'])}) | <= {TARGETS[strategy]:.0f} | "
                  f"{'yes' if met else 'no'} |  ({time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
