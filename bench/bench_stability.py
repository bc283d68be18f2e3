"""How much a price model's test figure depends on floating-point noise: one strategy and its options, trained
over training seeds x numerics variants of this machine, each run in a process of its own (real data, the
tutorials' split as the product makes it: 25 % test, split seed 42, duplicate groups whole).

Numerics variants (the same code and data; only the order and width of floating-point sums change):
  default      oneDNN as TensorFlow picks it, this machine's cores as intra-op threads
  avx2         ONEDNN_MAX_CPU_ISA=AVX2 (oneDNN limited to AVX2 kernels)
  no-onednn    TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's own kernels)
  one-thread   one intra-op thread (other reduction order)

Prints the machine (CPU model, instruction set, cores), a table of test MAPE per variant and seed, the mean, the
spread (max - min) and the lowest R^2; --json writes every run. Cross-validation on train houses chooses a recipe
(bench/select_by_cv.py); this shows whether the choice is robust. `--strategy classify` trains the photo classifier
(room and price tier of each house photo, split by house as `classify` does) and prints its test accuracies instead.

Usage: python bench/bench_stability.py --strategy cnn|mixed|mlp|classify [--seeds 0,1,2,3]
       [--variants default,avx2,no-onednn,one-thread]
       [--recipe defaults|tutorials] [--set OPTION=VALUE ...] [--data ../shared/datasets/houses] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {"default": {}, "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"}, "no-onednn": {"TF_ENABLE_ONEDNN_OPTS": "0"},
            "one-thread": {"BENCH_INTRA_OP_THREADS": "1"}}
TARGETS = {"cnn": "mean <= 50 %, every run <= 60 %, every R^2 > 0, spread <= 15 points",
           "mixed": "spread <= 4 points, mean <= 21.0 %", "mlp": "spread reported",
           "classify": "spread reported (room and price-tier test accuracy)"}


def machine() -> str:
    """CPU model, the widest vector instruction set it has, and its cores."""
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", "unknown CPU", platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = next((name for name in ("avx512f", "avx2", "avx", "sse4_2") if name in flags), "unknown")
    return f"{model}; widest vector ISA: {isa}; {os.cpu_count()} cores (intra-op threads by default)"


def intra_op_threads() -> int:
    """Apply the variant's thread count (before any TensorFlow work); the count in effect."""
    threads = os.environ.get("BENCH_INTRA_OP_THREADS")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()


def child(dataset: Path, options: dict, work: Path) -> dict:
    """One price training in this process; its test figures."""
    threads = intra_op_threads()

    from tasks.price.data import TargetScale
    from tasks.price.options import PriceOptions
    from tasks.price.train import predict_prices, train_model
    from tasks.training.metrics import regression_metrics
    from tasks.training.saved_models import load_keras_model

    encoders = json.loads((dataset / "encoders.json").read_text())
    chosen = PriceOptions(**options)
    started = time.perf_counter()
    result = train_model(dataset / "train.parquet", encoders, chosen, work / "model",
                         member_folder=lambda member: work / f"member-{member.seed}")
    model = load_keras_model(result.model_path)
    actual, predicted = predict_prices(model, dataset / "test.parquet", chosen.strategy,
                                       TargetScale(chosen.target, encoders["price_max"]))
    metrics = regression_metrics(actual, predicted)
    return {"mape": metrics["mape_mean"], "r2": metrics["r2"], "seconds": time.perf_counter() - started,
            "intra_op_threads": threads}


def classify_child(manifest: Path, options: dict, work: Path) -> dict:
    """One classifier training in this process (its images cached beside the manifest); its test accuracies."""
    threads = intra_op_threads()
    from bench.classify_quality import labelled_images, train_and_test
    from tasks.classify.options import ClassifierOptions

    chosen = ClassifierOptions(**options)
    images = labelled_images(manifest.parent / "cache", manifest, chosen)
    started = time.perf_counter()
    _, metrics = train_and_test(images, chosen, work)
    return {"room": metrics["room"]["accuracy"], "tier": metrics["price_tier"]["accuracy"],
            "seconds": time.perf_counter() - started, "intra_op_threads": threads}


def recipe(strategy: str, name: str, settings: list[str]) -> dict:
    """Every option of the run, resolved: the strategy's defaults or the tutorials' recipe, then --set."""
    from bench.common import option_setting

    given = dict(option_setting(item) for item in settings)
    if strategy == "classify":
        from tasks.classify.options import ClassifierOptions

        if name == "tutorials":
            raise SystemExit("error: --recipe tutorials is for the price strategies; change the classifier's "
                             "options with --set")
        return ClassifierOptions(**given).model_dump()
    from tasks.price.options import PriceOptions

    return PriceOptions(strategy=strategy, recipe="tutorials" if name == "tutorials" else "stable",
                        **given).model_dump()


# What each run reports: (key, heading, format); the first is the table's figure, "min R^2" is a price column.
FIGURES = {"price": [("mape", "test MAPE %", "{:.2f}")],
           "classify": [("room", "test room accuracy", "{:.3f}"), ("tier", "test price-tier accuracy", "{:.3f}")]}


def table(runs: list[dict], seeds: list[int], variants: list[str], key: str, digits: str) -> str:
    """Per variant and seed, then over all runs: the mean and the spread (max - min) of one figure."""
    import numpy as np

    with_r2 = "r2" in runs[0]
    lines = ["| variant | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | spread |" +
             (" min R^2 |" if with_r2 else ""), "|---" * (len(seeds) + 3 + with_r2) + "|"]
    for variant in [*variants, "all"]:
        chosen = [r for r in runs if variant in ("all", r["variant"])]
        values = [r[key] for r in chosen]
        cells = ([digits.format(next(r[key] for r in chosen if r["seed"] == s)) for s in seeds] if variant != "all"
                 else ["" for _ in seeds])
        lines.append(f"| {'**all**' if variant == 'all' else variant} | " + " | ".join(cells) +
                     f" | {digits.format(np.mean(values))} | {digits.format(max(values) - min(values))} |" +
                     (f" {min(r['r2'] for r in chosen):.3f} |" if with_r2 else ""))
    return "\n".join(lines)


def shown(run: dict) -> str:
    """One run's figures on its progress line."""
    if "mape" in run:
        return f"MAPE {run['mape']:6.2f} %  R^2 {run['r2']:6.3f}"
    return f"room accuracy {run['room']:.3f}  price-tier accuracy {run['tier']:.3f}"


def prepare(strategy: str, data: Path, work: Path, options: dict) -> Path:
    """What every run reads, built once: the price dataset's folder, or the classifier's label manifest with its
    images cached beside it."""
    if strategy != "classify":
        from bench.common import run_stages

        run_stages(data, work / "cache")
        return next((work / "cache" / "dataset").iterdir())
    from bench.classify_quality import labelled_images
    from tasks.classify.house_labels import write_house_labels
    from tasks.classify.options import ClassifierOptions

    manifest = work / "labels.csv"
    write_house_labels(data, manifest)
    labelled_images(work / "cache", manifest, ClassifierOptions(**options))
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategy", choices=("mlp", "cnn", "mixed", "classify"), required=True)
    parser.add_argument("--seeds", default="0,1,2,3", help="training seeds (default 0,1,2,3)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--recipe", choices=("defaults", "tutorials"), default="defaults",
                        help="the product's defaults for the strategy, or the tutorials' recipe (price strategies)")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                        help="change one option of the recipe, e.g. --set epochs=50 (VALUE as JSON or text)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "houses")
    parser.add_argument("--json", type=Path, help="write every run (variant, seed, MAPE, R^2, seconds) here")
    parser.add_argument("--child", nargs=3, metavar=("DATASET", "OPTIONS", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child = classify_child if args.strategy == "classify" else child
        print(json.dumps(run_child(Path(args.child[0]), json.loads(args.child[1]), Path(args.child[2]))))
        return 0
    seeds, variants = [int(s) for s in args.seeds.split(",")], args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        print(f"error: --variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    options = recipe(args.strategy, args.recipe, args.set)
    print(f"machine: {machine()}")
    print(f"{args.strategy}, {args.recipe} recipe{' with ' + ', '.join(args.set) if args.set else ''}; "
          f"seeds {seeds} x variants {variants}; target: {TARGETS[args.strategy]}", flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-stability-") as tmp:
        work = Path(tmp)
        dataset = prepare(args.strategy, args.data, work, options)
        for variant in variants:
            for seed in seeds:
                folder = work / f"{variant}-{seed}"
                env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **VARIANTS[variant]}
                done = subprocess.run([sys.executable, __file__, "--strategy", args.strategy, "--child", str(dataset),
                                       json.dumps({**options, "seed": seed}), str(folder)],
                                      env=env, capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"error: {variant} seed {seed} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                    return 1
                run = {"variant": variant, "seed": seed, **json.loads(done.stdout.strip().splitlines()[-1])}
                runs.append(run)
                print(f"  {variant:<11} seed {seed}: {shown(run)}  "
                      f"({run['seconds']:.0f} s, intra-op threads: {run['intra_op_threads']})", flush=True)
    for key, heading, digits in FIGURES["classify" if args.strategy == "classify" else "price"]:
        print(f"{heading}:\n{table(runs, seeds, variants, key, digits)}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "options": options, "runs": runs}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
