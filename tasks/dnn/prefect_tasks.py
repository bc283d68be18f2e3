"""The DNN flows' Prefect tasks: chunks of images on a thread pool, the batch report, the colorizer's
training and its quality report; artifacts."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from tasks.core.artifacts import publish_markdown
from tasks.core.cache import Cache
from tasks.core.prefect_cache import cached, refreshing
from tasks.core.runners import StoppingThreadPoolTaskRunner
from tasks.dnn import reports
from tasks.dnn.batch import DnnJob, chunked, process_image
from tasks.dnn.colorizer import colorizer_entry, train_or_reuse_colorizer


@task(name="dnn-images", cache_policy=NO_CACHE, task_run_name="{job.kind}-chunk-{number}")
def chunk_task(job: DnnJob, images: list[tuple[Path, str]], number: int) -> list[dict]:
    """A chunk of images one after another on this worker thread; skipped bad images are logged."""
    log = get_run_logger()
    rows = [process_image(job, path, name, log) for path, name in images]
    for row in rows:
        if row["status"] == "skipped":
            log.warning("Skipped %s", row["reason"])
    return rows


def run_chunks(job: DnnJob, images: list[tuple[Path, str]], workers: int) -> list[dict]:
    """Every image through the network, in chunks on `workers` threads; timing rows in input order."""
    log = get_run_logger()
    rows: list[dict] = []
    with StoppingThreadPoolTaskRunner(max_workers=workers) as runner:
        futures = [runner.submit(chunk_task, {"job": job, "images": chunk, "number": number})
                   for number, chunk in enumerate(chunked(images, workers), start=1)]
        for future in futures:
            rows += future.result()
            log.info("%s: %d of %d images", job.kind, len(rows), len(images))
    return rows


@task(name="dnn-report", cache_policy=NO_CACHE)
def batch_report_task(kind: str, config: dict, out: Path, images: list[tuple[Path, str]], rows: list[dict],
                      seconds: float, engine: str, workers: int, sheet_images: int) -> dict:
    """Contact sheet, timing table, summary.json; the summary as a Prefect artifact."""
    summary, text = reports.batch_report(kind, config, out, images, rows, seconds, engine, workers, sheet_images)
    publish_markdown(text, f"{kind}-summary", f"{kind} batch summary", out)
    return summary


def _colorizer_entry(inputs: dict) -> tuple[str, bool]:
    return colorizer_entry(inputs["data"], Cache(inputs["cache_dir"]), inputs["size"], inputs["epochs"],
                           inputs["batch_size"], inputs["test_fraction"], inputs["seed"], inputs["max_images"])


@task(**cached("train-colorizer", _colorizer_entry), tags=["training"])
def train_colorizer_task(data: Path, cache_dir: Path, size: int, epochs: int, batch_size: int,
                         test_fraction: float, seed: int, max_images: int | None) -> tuple[Path, list[Path]]:
    """Train (or reuse) the colorizer on the folder's photos; (cache entry, held-out photo paths)."""
    log = get_run_logger()
    return train_or_reuse_colorizer(data, Cache(cache_dir, log, refreshing()), size, epochs, batch_size,
                                    test_fraction, seed, max_images, log)


@task(name="colorizer-report", cache_policy=NO_CACHE)
def colorizer_report_task(entry: Path, held_out: list[Path], size: int, out: Path) -> dict:
    """The colorizer copied to `out`, its held-out quality vs gray (quality.json/.md, contact sheet); artifact."""
    result, text = reports.colorizer_report(entry, held_out, size, out)
    publish_markdown(text, "colorizer-quality", "Our colorizer vs leaving the photos gray", out)
    get_run_logger().info("Colorizer on %d held-out photos: PSNR %.2f dB (gray %.2f), Lab error %.2f (gray %.2f)",
                          result["photos"], result["psnr"], result["psnr_gray"], result["lab_error"],
                          result["lab_error_gray"])
    return result
