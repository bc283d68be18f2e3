"""OpenCV DNN flows: stylize and colorize a batch of images, and train our own colorizer.

The images run as chunks (one `dnn-images` task each, every image cached by content in
tasks.dnn_tasks) on a ThreadPoolTaskRunner of `workers` threads opened inside the flow (a subflow
cost about 0.6 s per batch), each thread with its own network and OpenCV's threads split between them.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import cv2
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import ColorizeConfig, DnnRunOptions, StylizeConfig, TrainColorizerConfig
from tasks.cache import atomic_write_bytes, atomic_write_json
from tasks.dnn_images import contact_sheet, decode_image, resolve_inputs, write_timing
from tasks.dnn_models import check_backend, read_net
from tasks.dnn_tasks import DnnJob, chunk_task, chunked, load_net, model_sha256, train_colorizer_task
from tasks.errors import DataError
from tasks.evaluate import markdown_table


@contextmanager
def opencv_threads_per_worker(workers: int):
    """Split OpenCV's threads between the workers (no oversubscription), restore afterwards."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(max(1, (os.cpu_count() or 1) // workers) if workers > 1 else before)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def run_chunks(job: DnnJob, images: list[tuple[Path, str]], workers: int) -> list[dict]:
    """Every image through the network, in chunks on `workers` threads; timing rows in input order."""
    log = get_run_logger()
    rows: list[dict] = []
    with ThreadPoolTaskRunner(max_workers=workers) as runner:
        futures = [runner.submit(chunk_task, {"job": job, "images": chunk, "number": number})
                   for number, chunk in enumerate(chunked(images, workers), start=1)]
        for future in futures:
            rows += future.result()
            log.info("%s: %d of %d images", job.kind, len(rows), len(images))
    return rows


@task(name="dnn-report", cache_policy=NO_CACHE)
def report_task(kind: str, config: DnnRunOptions, images: list[tuple[Path, str]], rows: list[dict],
                seconds: float, engine: str) -> dict:
    """Contact sheet, timing table, summary.json; the summary as a Prefect artifact."""
    out = config.out
    totals = write_timing(rows, seconds, out)
    shown = [(name, path) for (path, name), row in zip(images, rows) if row["status"] != "skipped"]
    pairs = [(name, decode_image(path.read_bytes(), path), decode_image((out / name).read_bytes(), out / name))
             for name, path in shown[:config.sheet_images]]
    sheet = contact_sheet(pairs, out / "contact_sheet.png") if pairs else None
    skipped = [{"image": r["image"], "reason": r["reason"]} for r in rows if r["status"] == "skipped"]
    summary = {"kind": kind, **totals, "engine": engine, "workers": config.workers, "skipped_images": skipped,
               "contact_sheet": str(sheet) if sheet else None, "config": config.model_dump(mode="json")}
    atomic_write_json(out / "summary.json", summary)
    lines = [f"# {kind}: {totals['images']} images", "", f"- {engine}, {config.workers} worker(s)",
             f"- {totals['done']} new, {totals['reused']} reused, {totals['skipped']} skipped; "
             f"{totals['images_per_second']} images/s", f"- outputs and contact sheet: `{out.resolve()}`", ""]
    if skipped:
        lines += ["## Skipped", "", markdown_table(skipped, ["image", "reason"]), ""]
    create_markdown_artifact("\n".join(lines), key=f"{kind}-summary", description=f"{kind} batch summary")
    return summary


def _run_batch(kind: str, config: DnnRunOptions, settings: dict, prototxt: Path | None = None,
               points: Path | None = None) -> dict:
    log = get_run_logger()
    engine = check_backend(config.backend, config.target)
    images = resolve_inputs(config.input, config.limit)
    job = DnnJob(kind, config.model, model_sha256(config.model, prototxt, points), settings, prototxt, points,
                 config.backend, config.target, config.cache, config.out, config.on_bad_image)
    load_net(job)  # a bad model stops here, before any image
    config.out.mkdir(parents=True, exist_ok=True)
    log.info("%s %d images with %s (%s); %d worker(s)", kind, len(images), config.model, engine, config.workers)
    start = time.perf_counter()
    with opencv_threads_per_worker(config.workers):
        rows = run_chunks(job, images, config.workers)
    summary = report_task(kind, config, images, rows, time.perf_counter() - start, engine)
    log.info("%s: %d new, %d reused, %d skipped in %.1f s (%s images/s); contact sheet %s", kind, summary["done"],
             summary["reused"], summary["skipped"], summary["seconds"], summary["images_per_second"],
             summary["contact_sheet"])
    return summary


def _need_model(config: DnnRunOptions, example: str) -> Path:
    if config.model is None:
        raise DataError(f"pass --model PATH (e.g. {example}); `python -m flows models list` shows the published "
                        "networks and `python -m flows models fetch NAME` downloads one")
    return config.model


@flow(name="stylize", flow_run_name=lambda: f"stylize-{datetime.now():%Y%m%d-%H%M%S}")
def stylize_flow(config: StylizeConfig) -> dict:
    """Style every input image with a fast neural style network; outputs under `config.out`."""
    _need_model(config, "models/candy.t7, or models/mosaic-9.onnx --mean 0,0,0 --swap-rb")
    settings = {"width": config.width, "mean": list(config.mean), "swap_rb": config.swap_rb}
    return _run_batch("stylize", config, settings)


@flow(name="colorize", flow_run_name=lambda: f"colorize-{datetime.now():%Y%m%d-%H%M%S}")
def colorize_flow(config: ColorizeConfig) -> dict:
    """Colorize every input image (its L kept, ab predicted); outputs under `config.out`."""
    from tasks.colorizer_training import sidecar_size

    model = _need_model(config, "runs/colorizer/colorizer.onnx")
    size = config.size or sidecar_size(model) or 224
    return _run_batch("colorize", config, {"size": size}, config.prototxt, config.points)


@flow(name="train-colorizer", flow_run_name=lambda: f"train-colorizer-{datetime.now():%Y%m%d-%H%M%S}")
def train_colorizer_flow(config: TrainColorizerConfig) -> dict:
    """Train (or reuse) our colorizer, export it to ONNX, report held-out quality vs the gray baseline."""
    from tasks.colorizer_training import quality

    log = get_run_logger()
    entry, held_out = train_colorizer_task(config.data, config.cache, config.size, config.epochs,
                                           config.batch_size, config.test_fraction, config.seed, config.max_images)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    for name in ("colorizer.onnx", "colorizer.json", "colorizer.keras"):
        tmp = out / f".{name}.tmp"
        shutil.copyfile(entry / name, tmp)
        tmp.replace(out / name)
    net = read_net(out / "colorizer.onnx")
    photos = [(path, decode_image(path.read_bytes(), path)) for path in held_out]
    result = quality(net, photos, config.size)
    atomic_write_json(out / "quality.json", result)
    columns = ["photo", "psnr", "psnr_gray", "lab_error", "lab_error_gray"]
    text = (f"# Colorizer quality on {result['photos']} held-out photos\n\n"
            f"| | PSNR (dB, higher is better) | mean Lab colour error (CIE76, lower is better) |\n|---|---|---|\n"
            f"| our colorizer | {result['psnr']:.2f} | {result['lab_error']:.2f} |\n"
            f"| gray (ab = 0) | {result['psnr_gray']:.2f} | {result['lab_error_gray']:.2f} |\n\n"
            + markdown_table(result["per_photo"], columns) + "\n")
    atomic_write_bytes(out / "quality.md", text.encode())
    from tasks.colorize import colorize

    pairs = [(path.name, image, colorize(net, image, config.size)) for path, image in photos[:12]]
    contact_sheet(pairs, out / "contact_sheet.png")
    create_markdown_artifact(text.split("\n\n| photo")[0], key="colorizer-quality",
                             description="Our colorizer vs leaving the photos gray")
    log.info("Colorizer on %d held-out photos: PSNR %.2f dB (gray %.2f), Lab error %.2f (gray %.2f)",
             result["photos"], result["psnr"], result["psnr_gray"], result["lab_error"], result["lab_error_gray"])
    return {key: value for key, value in result.items() if key != "per_photo"} | {"model": str(out / "colorizer.onnx")}
