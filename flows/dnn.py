"""OpenCV DNN flows: stylize and colorize a batch of images, and train our own colorizer.

The images run as chunks (one `dnn-images` task each, every image cached by content in
tasks.dnn.batch) on a ThreadPoolTaskRunner of `workers` threads opened inside the flow (a subflow
cost about 0.6 s per batch), each thread with its own network and OpenCV's threads split between them.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from prefect import flow
from prefect.logging import get_run_logger

from flows.config import ColorizeConfig, DnnRunOptions, StylizeConfig, TrainColorizerConfig
from flows.run_folder import staged
from tasks.core.errors import DataError
from tasks.core.prefect_cache import with_results_in
from tasks.dnn.batch import DnnJob, load_net, model_sha256, opencv_threads_per_worker
from tasks.dnn.images import resolve_inputs
from tasks.dnn.net import check_backend
from tasks.dnn.prefect_tasks import batch_report_task, colorizer_report_task, run_chunks, train_colorizer_task


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
    summary = batch_report_task(kind, config.model_dump(mode="json"), config.out, images, rows,
                                time.perf_counter() - start, engine, config.workers, config.sheet_images)
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
    config.check_paths()
    _need_model(config, "models/candy.t7, or models/mosaic-9.onnx --mean 0,0,0 --swap-rb")
    settings = {"width": config.width, "mean": list(config.mean), "swap_rb": config.swap_rb}
    with staged(config) as config:
        return _run_batch("stylize", config, settings)


@flow(name="colorize", flow_run_name=lambda: f"colorize-{datetime.now():%Y%m%d-%H%M%S}")
def colorize_flow(config: ColorizeConfig) -> dict:
    """Colorize every input image (its L kept, ab predicted); outputs under `config.out`."""
    from tasks.dnn.colorizer import sidecar_size

    config.check_paths()
    model = _need_model(config, "runs/colorizer/colorizer.onnx")
    size = config.size or sidecar_size(model) or 224
    with staged(config) as config:
        return _run_batch("colorize", config, {"size": size}, config.prototxt, config.points)


@flow(name="train-colorizer", flow_run_name=lambda: f"train-colorizer-{datetime.now():%Y%m%d-%H%M%S}")
def train_colorizer_flow(config: TrainColorizerConfig) -> dict:
    """Train (or reuse) our colorizer, export it to ONNX, report held-out quality vs the gray baseline."""
    config.check_paths()
    train = with_results_in(train_colorizer_task, config.cache, config.refresh_cache)
    entry, held_out = train(config.data, config.cache, config.size, config.epochs, config.batch_size,
                            config.test_fraction, config.seed, config.max_images)
    with staged(config) as config:
        return colorizer_report_task(entry, held_out, config.size, config.out)
