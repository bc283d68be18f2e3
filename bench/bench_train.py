"""Training throughput: stream and batch trainers relative to fit, with the tutorials'
Python-generator approach beside them. Same model, batch size and data (the real dataset's
train split), measured side by side in one run.

Throughput counts epochs 2..N (the first epoch pays for graph tracing) and includes what each
trainer does per epoch in the product (validation, checkpoint). Usage:
    python bench/bench_train.py [--data ../shared/datasets/houses] [--strategy mixed] [--epochs 8]
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
from tasks.core.splits import holdout_rows as validation_rows  # noqa: E402
from tasks.price.data import TargetScale, load_arrays  # noqa: E402
from tasks.price.options import PriceOptions  # noqa: E402
from tasks.price.train import build_model, compile_model, train_model  # noqa: E402


def time_trainer(dataset: Path, encoders: dict, options: PriceOptions, work: Path) -> tuple[float, int]:
    stamps = []
    result = train_model(dataset / "train.parquet", encoders, options, work,
                         report=lambda epoch, epochs, logs: stamps.append(time.perf_counter()))
    return (len(stamps) - 1) * result.n_train / (stamps[-1] - stamps[0]), result.n_train


def time_python_generator(dataset: Path, encoders: dict, options: PriceOptions) -> float:
    """The tutorials' way: a Python generator yielding shuffled batches, fed to fit (fit_generator)."""
    keras.utils.set_random_seed(options.seed)
    scale = TargetScale(options.target, encoders["price_max"])
    rows, val_rows = validation_rows(len(load_arrays(dataset / "train.parquet", "mlp", scale)[1]),
                                     options.validation_fraction, options.seed)
    x, y, _ = load_arrays(dataset / "train.parquet", options.strategy, scale, rows)
    xv, yv, _ = load_arrays(dataset / "train.parquet", options.strategy, scale, val_rows)

    def batches():
        rng = np.random.default_rng(options.seed)
        while True:
            order = rng.permutation(len(y))
            for start in range(0, len(y), options.batch_size):
                pick = order[start:start + options.batch_size]
                yield {k: v[pick] for k, v in x.items()}, y[pick]

    model = build_model(options, len(encoders["feature_names"]), encoders["tile_size"] * 2, float(y.mean()))
    compile_model(model, options)
    stamps = []
    timer = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
    steps = int(np.ceil(len(y) / options.batch_size))
    model.fit(batches(), steps_per_epoch=steps, epochs=options.epochs, validation_data=(xv, yv),
              callbacks=[timer], verbose=0)
    return (len(stamps) - 1) * len(y) / (stamps[-1] - stamps[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "houses")
    parser.add_argument("--strategy", default="mixed")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        stages = run_stages(args.data, work / "cache")
        dataset = next((work / "cache" / "dataset").iterdir())
        encoders = json.loads((dataset / "encoders.json").read_text())
        print(f"{args.strategy} model, batch size {args.batch_size}, {args.epochs} epochs per trainer, "
              f"{stages['houses']} houses; samples/s over epochs 2..{args.epochs}; {args.rounds} alternating rounds")
        results: dict[str, list[float]] = {}
        for round_ in range(args.rounds):
            for trainer in ("fit", "stream", "batch", "generator"):
                options = PriceOptions(strategy=args.strategy, trainer="fit" if trainer == "generator" else trainer,
                                          epochs=args.epochs, batch_size=args.batch_size)
                if trainer == "generator":
                    rate = time_python_generator(dataset, encoders, options)
                else:
                    rate, _ = time_trainer(dataset, encoders, options, work / f"{trainer}-{round_}")
                results.setdefault(trainer, []).append(rate)
        fit = float(np.median(results["fit"]))
        for trainer, rates in results.items():
            label = "python generator (tutorials)" if trainer == "generator" else trainer
            print(f"  {label:>28}: median {np.median(rates):8.1f} samples/s "
                  f"(rounds {', '.join(f'{r:.1f}' for r in rates)}); ratio to fit {np.median(rates) / fit:.2f}")


if __name__ == "__main__":
    main()
