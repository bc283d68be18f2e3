"""Classifier quality on the house photos labelled by room and price tier (split by house): for each
candidate set of options, the validation accuracy (houses held out of the train split: what
defaults are chosen on) and the test accuracy (reported, never chosen on), next to chance.
Usage: python bench/classify_quality.py [--data ../shared/datasets/houses] CANDIDATES.json
CANDIDATES.json: {"name": {classifier options...}, ...}; "{}" alone means the defaults.
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

from tasks.classify.encoding import LabelEncoding  # noqa: E402
from tasks.classify.evaluate import column_metrics  # noqa: E402
from tasks.classify.house_labels import write_house_labels  # noqa: E402
from tasks.classify.images import build_labelled_images, split_rows  # noqa: E402
from tasks.classify.options import ClassifierOptions  # noqa: E402
from tasks.classify.train import load_images, predict, train_classifier  # noqa: E402
from tasks.core.cache import Cache  # noqa: E402
from tasks.training.saved_models import load_keras_model  # noqa: E402


def validation_accuracy(history: dict, column: str, kind: str, last: int = 3) -> float | None:
    """Mean of the last epochs' validation accuracy of a column (multioutput only logs it per head)."""
    values = history.get(f"val_{column}_accuracy")
    return float(np.mean(values[-last:])) if values else None


def labelled_images(cache: Path, manifest: Path, options: ClassifierOptions):
    """The house photos' labelled image set at the options' size, split by house (25 % test, seed 42)."""
    return build_labelled_images(Cache(cache), manifest, [], options.size(), 0.25, 42)


def train_and_test(images, options: ClassifierOptions, folder: Path) -> tuple:
    """Train a classifier into `folder`; its training result and its test metrics per label column."""
    encoding = LabelEncoding.fit(images.table(images.label_columns), images.label_columns, options.kind)
    result = train_classifier(images, encoding, options, folder)
    model = load_keras_model(result.model_path)
    rows = split_rows(images, "test")
    metrics = column_metrics(encoding, images.table(images.label_columns).iloc[rows],
                             predict(model, load_images(images, rows)))
    return result, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "houses")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    args = parser.parse_args()
    candidates = json.loads(args.candidates.read_text())
    work = Path(tempfile.mkdtemp(prefix="classify-quality-"))
    manifest = work / "labels.csv"
    write_house_labels(args.data, manifest)
    print("| candidate | val room | val tier | test room | test tier | chance room / tier | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, values in candidates.items():
        options = ClassifierOptions(**values)
        images = labelled_images(args.cache, manifest, options)
        started = time.perf_counter()
        result, metrics = train_and_test(images, options, work / name)
        seconds = time.perf_counter() - started
        val = [validation_accuracy(result.history, c, options.kind) for c in ("room", "price_tier")]
        shown = ["-" if v is None else f"{v:.3f}" for v in val]
        print(f"| {name} | {shown[0]} | {shown[1]} | {metrics['room']['accuracy']:.3f} | "
              f"{metrics['price_tier']['accuracy']:.3f} | {metrics['room']['chance']:.2f} / "
              f"{metrics['price_tier']['chance']:.2f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
