"""The classify flow: [house labels] -> labelled images (cached) -> train (cached, resumable) -> evaluate. With a
Dask cluster (`workers` / `dask_address`) the images are decoded there, in batches mapped over its workers (the
`labelled-images` subflow); this process writes them as they come, one batch in memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prefect import flow, unmapped
from prefect.context import get_run_context
from prefect.logging import get_run_logger

from flows.config import ClassifyConfig, run_parameter
from flows.run_folder import staged
from tasks.classify import images as labelled
from tasks.classify.prefect_tasks import (
    decode_images_task,
    evaluate_classifier_task,
    house_labels_task,
    labelled_images_task,
    train_classifier_task,
)
from tasks.core.cache import Cache
from tasks.core.cluster import cluster_task_runner
from tasks.core.prefect_cache import refreshing, with_results_in
from tasks.houses.prefect_tasks import resolve_data_task
from tasks.lifecycle.prefect_tasks import record_run_task


def _run_name() -> str:
    return f"classify-{run_parameter('kind')}-{run_parameter('backbone')}-{datetime.now():%Y%m%d-%H%M%S}"


@flow(name="labelled-images", flow_run_name=lambda: f"labelled-images-{datetime.now():%Y%m%d-%H%M%S}")
def labelled_images_flow(config: ClassifyConfig, source, size: int) -> labelled.LabelledImages:
    """The labelled image set from the cache, else decoded in batches on this flow's task runner (a cluster)."""

    def on_cluster(batches: list) -> Iterator[labelled.DecodedBatch]:
        done = decode_images_task.map([paths for paths, _ in batches], [rows for _, rows in batches], unmapped(size),
                                      unmapped(config.on_bad_image), list(range(1, len(batches) + 1)))
        for number, future in enumerate(done, start=1):  # in order: the file is the same as one process writes
            yield future.result()
            get_run_logger().info("Images: batch %d of %d written", number, len(batches))

    built = labelled.build_labelled_images(Cache(config.cache, get_run_logger(), refreshing()), source,
                                           config.label_names, size, config.test_size, config.split_seed,
                                           config.on_bad_image, on_cluster)
    get_run_logger().info("%s %d train + %d test images at %d px", "Prepared" if built.computed else "Reusing cached",
                          built.n_train, built.n_test, size)
    return built


@flow(name="classify", flow_run_name=_run_name)
def classify_flow(config: ClassifyConfig) -> dict:
    """Train a multilabel or multioutput image classifier and write its report under `config.out`."""
    config.check_paths()
    tracker = config.tracker()  # an unreachable store stops the run here, before any work
    with staged(config) as config:
        if config.data is None:
            houses = resolve_data_task(config.houses, config.cache)  # a folder, or a URL of a zip (downloaded once)
            source = house_labels_task(houses, config.out / "house-labels.csv", config.test_size, config.split_seed)
        else:
            source = config.data
        options = config.classifier_options()
        if config.workers or config.dask_address:
            runner = cluster_task_runner(config.workers, config.dask_address, get_run_context().client.api_url)
            images = labelled_images_flow.with_options(task_runner=runner)(config, source, options.size())
        else:
            prepare = with_results_in(labelled_images_task, config.cache, config.refresh_cache)
            images = prepare(config.cache, source, config.label_names, options.size(), config.test_size,
                             config.split_seed, config.on_bad_image)
        train = with_results_in(train_classifier_task, config.cache, config.refresh_cache)
        trained = train(config.cache, images, options, progress_key="classify-progress")
        data_info = {"source": str(source), "split": "by house" if config.data is None else "as the data says"}
        metrics = evaluate_classifier_task(trained, images, options, config.out, data_info)
        record_run_task(tracker, "house-photos-classify", config.out.name, config.model_dump(mode="json"), metrics,
                        trained[1]["history"], {"images.cache_key": images.folder.name},
                        {"report": config.out / "report.md", "report/plots": config.out / "plots"})
        return metrics
