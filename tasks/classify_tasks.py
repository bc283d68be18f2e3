"""The classify flow's Prefect tasks: labelled images (cached Parquet), training (cached, resumable),
held-out evaluation with files under --out and artifacts.

Training cache: `CACHE/classify/KEY` (KEY: the image set's content key, the options and the code
version) holds the checkpoint, `labels.json` and, once finished, `done.json` and `model.keras`.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks import backbones, classifier_models, classify_train, label_data, train
from tasks.cache import Cache, atomic_write_json, replacing_folder
from tasks.classify_options import ClassifierOptions
from tasks.hashing import code_version, digest
from tasks.house_labels import write_house_labels
from tasks.label_data import LabelledImages
from tasks.label_encoding import LabelEncoding
from tasks.train_tasks import progress_reporter, reuse_or_train


@task(name="house-labels", cache_policy=NO_CACHE)
def house_labels_task(houses: Path, manifest: Path, test_size: float, seed: int) -> Path:
    """Label each house photo with its room and price tier (split by house); returns the manifest."""
    summary = write_house_labels(houses, manifest, test_size, seed)
    get_run_logger().info("House labels: %d photos of %d houses (%d train, %d test houses); price tiers at "
                          "$%s and $%s", summary["photos"], summary["houses"], summary["train_houses"],
                          summary["test_houses"], *(f"{t:,.0f}" for t in summary["tier_thresholds"]))
    return manifest


@task(name="labelled-images", cache_policy=NO_CACHE, retries=0)
def labelled_images_task(cache_dir: Path, source: Path, label_names: list[str], size: int, test_size: float,
                         seed: int, on_bad_image: label_data.OnBadImage) -> LabelledImages:
    """Validate, split, resize and cache the images as Parquet (reused when nothing changed)."""
    log = get_run_logger()
    images = label_data.build_labelled_images(Cache(cache_dir), source, label_names, size, test_size, seed,
                                              on_bad_image)
    log.info("%s %d train + %d test images at %d px, labels %s", "Prepared" if images.computed else "Reusing cached",
             images.n_train, images.n_test, size, ", ".join(images.label_columns))
    for bad in images.skipped:
        log.warning("Skipped %s: %s", bad["path"], bad["problem"])
    return images


def classifier_key(images: LabelledImages, options: ClassifierOptions) -> str:
    return digest("classify", images.folder.name, options.model_dump(mode="json"),
                  code_version(backbones, classifier_models, classify_train, train))


@task(name="train-classifier", cache_policy=NO_CACHE, timeout_seconds=24 * 3600, tags=["training"])
def train_classifier_task(cache_dir: Path, images: LabelledImages, options: ClassifierOptions,
                          progress_key: str | None) -> tuple[Path, dict]:
    """Train (or resume, or reuse) a classifier on the train split: (work folder, training summary)."""
    log = get_run_logger()
    encoding = LabelEncoding.fit(images.table(images.label_columns), images.label_columns, options.kind,
                                 options.threshold)
    folder = cache_dir / "classify" / classifier_key(images, options)

    def run() -> train.TrainResult:
        atomic_write_json(folder / "labels.json", {**encoding.to_json(), "image_size": images.size,
                                                   "options": options.model_dump(mode="json")})
        return classify_train.train_classifier(images, encoding, options, folder, log,
                                               progress_reporter(log, progress_key))

    return reuse_or_train(folder, "classifier", run)


def export_classifier(folder: Path, target: Path) -> Path:
    """model.keras + labels.json: all `predict-labels` needs, no pickle; replaced in one step."""
    with replacing_folder(target) as tmp:
        for name in ("model.keras", "labels.json"):
            shutil.copyfile(folder / name, tmp / name)
    return target


@task(name="evaluate-classifier", cache_policy=NO_CACHE)
def evaluate_classifier_task(trained: tuple[Path, dict], images: LabelledImages, options: ClassifierOptions,
                             out: Path, data_info: dict) -> dict:
    """Per-column reports, confusion matrices, curves, report.md, metrics.json, the exported model; artifacts."""
    import keras
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    from tasks import classify_evaluate, evaluate

    folder, done = trained
    encoding = LabelEncoding.from_json(json.loads((folder / "labels.json").read_text()))
    model = keras.models.load_model(folder / "model.keras", safe_mode=True)
    test_rows = label_data.split_rows(images, "test")
    table = images.table(images.label_columns).iloc[test_rows]
    predicted = classify_train.predict(model, classify_train.load_images(images, test_rows))
    metrics = {"kind": encoding.kind, "backbone": options.backbone,
               "columns": classify_evaluate.column_metrics(encoding, table, predicted),
               "n_test": len(test_rows), "epochs": done["epochs_run"], "best_epoch": done["best_epoch"],
               "seconds": round(done["seconds"], 2)}
    if encoding.kind == "multilabel":
        metrics["multilabel"] = classify_evaluate.multilabel_metrics(encoding, table, predicted)
    heads = ["labels"] if encoding.kind == "multilabel" else list(encoding.columns)
    plots = {"training curves": classify_evaluate.plot_curves(done["history"], heads, out / "plots" / "curves.png")}
    for name, column in metrics["columns"].items():
        plots[f"confusion matrix: {name}"] = evaluate.plot_confusion(
            column["confusion"], column["classes"], out / "plots" / f"confusion_{name}.png",
            f"{name}: confusion matrix (test)")
    atomic_write_json(out / "metrics.json", metrics)
    export_classifier(folder, out / "model")
    info = {**data_info, "n_train": done["n_train"] + done["n_validation"], "n_validation": done["n_validation"],
            "n_test": len(test_rows), "size": images.size}
    relative = {title: str(path.relative_to(out)) for title, path in plots.items()}
    text = classify_evaluate.classification_report_md(metrics, info, options.model_dump(mode="json"), relative)
    (out / "report.md").write_text(text)
    create_table_artifact([{"column": name, "accuracy": round(m["accuracy"], 4), "chance": round(m["chance"], 4),
                            "majority": round(m["majority"], 4)} for name, m in metrics["columns"].items()],
                          key="classify-accuracy", description=f"{encoding.kind} test accuracy per label column")
    create_markdown_artifact(text, key="classify-report", description="Classification report")
    for title, path in plots.items():
        create_link_artifact(path.resolve().as_uri(), link_text=title,
                             key="classify-plot-" + re.sub(r"[^a-z0-9-]", "-", path.stem.lower()))
    for name, m in metrics["columns"].items():
        get_run_logger().info("Test accuracy %s: %.3f (chance %.3f, majority %.3f)", name, m["accuracy"],
                              m["chance"], m["majority"])
    return metrics
