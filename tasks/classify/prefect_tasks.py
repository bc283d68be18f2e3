"""The classify flow's Prefect tasks: house labels, labelled images (cached Parquet), training
(cached, resumable) and held-out evaluation with files under --out and artifacts.

Training cache: `CACHE/classify/KEY` (KEY: the image set's content key, the options and the code
version) holds the checkpoint, `labels.json` and, once finished, `done.json` and `model.keras`.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.classify import evaluate, images, models, train
from tasks.classify.encoding import LabelEncoding
from tasks.classify.house_labels import write_house_labels
from tasks.classify.options import ClassifierOptions
from tasks.core import storage
from tasks.core.artifacts import publish
from tasks.core.cache import Cache
from tasks.core.files import atomic_write_json
from tasks.core.hashing import code_version, digest
from tasks.core.prefect_cache import cached, refreshing
from tasks.training import augment, backbones, engine, layers, schedules, streams
from tasks.training.progress import finished_training, progress_reporter, reuse_or_train


@task(name="house-labels", cache_policy=NO_CACHE)
def house_labels_task(houses: Path, manifest: Path, test_size: float, seed: int) -> Path:
    """Label each house photo with its room and price tier (split by house); returns the manifest. Its paths are
    absolute: it is written in the staged run folder, one level deeper than where it ends."""
    summary = write_house_labels(houses, manifest, test_size, seed, absolute=True)
    get_run_logger().info("House labels: %d photos of %d houses (%d train, %d test houses); price tiers at "
                          "$%s and $%s", summary["photos"], summary["houses"], summary["train_houses"],
                          summary["test_houses"], *(f"{t:,.0f}" for t in summary["tier_thresholds"]))
    return manifest


def _images_entry(inputs: dict) -> tuple[str, bool]:
    *_, key = images.plan_labelled_images(inputs["source"], inputs["label_names"], inputs["size"],
                                          inputs["test_size"], inputs["seed"], inputs["on_bad_image"])
    return key, Cache(inputs["cache_dir"]).lookup(images.STAGE, key) is not None


@task(**cached("labelled-images", _images_entry), retries=0)
def labelled_images_task(cache_dir: Path, source: Path, label_names: list[str], size: int, test_size: float,
                         seed: int, on_bad_image: images.OnBadImage) -> images.LabelledImages:
    """Validate, split, resize and cache the images as Parquet (reused when nothing changed)."""
    log = get_run_logger()
    built = images.build_labelled_images(Cache(cache_dir, log, refreshing()), source, label_names, size, test_size,
                                         seed, on_bad_image)
    log.info("%s %d train + %d test images at %d px, labels %s", "Prepared" if built.computed else "Reusing cached",
             built.n_train, built.n_test, size, ", ".join(built.label_columns))
    for bad in built.skipped:
        log.warning("Skipped %s: %s", bad["path"], bad["problem"])
    return built


def classifier_key(labelled: images.LabelledImages, options: ClassifierOptions) -> str:
    return digest("classify", labelled.folder.name, options.model_dump(mode="json"),
                  code_version(backbones, models, train, engine, streams, augment, layers, schedules))


def _classifier_entry(inputs: dict) -> tuple[str, bool]:
    key = classifier_key(inputs["labelled"], inputs["options"])
    return key, finished_training(Path(inputs["cache_dir"]) / "classify" / key)[0] is not None


@task(**cached("train-classifier", _classifier_entry), timeout_seconds=24 * 3600, tags=["training"])
def train_classifier_task(cache_dir: Path, labelled: images.LabelledImages, options: ClassifierOptions,
                          progress_key: str | None) -> tuple[Path, dict]:
    """Train (or resume, or reuse) a classifier on the train split: (work folder, training summary)."""
    log = get_run_logger()
    encoding = LabelEncoding.fit(labelled.table(labelled.label_columns), labelled.label_columns, options.kind,
                                 options.threshold)
    folder = storage.localized(Path(cache_dir)) / "classify" / classifier_key(labelled, options)

    def run() -> engine.TrainResult:
        atomic_write_json(folder / "labels.json", {**encoding.to_json(), "image_size": labelled.size,
                                                   "options": options.model_dump(mode="json")})
        return train.train_classifier(labelled, encoding, options, folder, log, progress_reporter(log, progress_key))

    return reuse_or_train(folder, "classifier", run, log, refreshing())


@task(name="evaluate-classifier", cache_policy=NO_CACHE)
def evaluate_classifier_task(trained: tuple[Path, dict], labelled: images.LabelledImages,
                             options: ClassifierOptions, out: Path, data_info: dict) -> dict:
    """Per-column reports, confusion matrices, curves, report.md, metrics.json, the exported model; artifacts."""
    folder, done = trained
    metrics, report = evaluate.evaluate_classifier(folder, done, labelled, options, out, data_info)
    publish(report)
    for name, m in metrics["columns"].items():
        get_run_logger().info("Test accuracy %s: %.3f (chance %.3f, majority %.3f)", name, m["accuracy"],
                              m["chance"], m["majority"])
    return metrics


@task(name="decode-images", cache_policy=NO_CACHE, task_run_name="decode-images-{number}")
def decode_images_task(paths: list[str], rows: list[int], size: int, on_bad_image: images.OnBadImage,
                       number: int) -> images.DecodedBatch:
    """One batch of the classifier's images read and resized on a cluster worker (the flow writes them)."""
    return images.decode_batch(paths, rows, size, on_bad_image)
