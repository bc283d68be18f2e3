"""The classify flow: [house labels] -> labelled images (cached) -> train (cached, resumable) -> evaluate."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from flows.config import ClassifyConfig, run_parameter
from flows.run_folder import staged
from tasks.classify.prefect_tasks import (
    evaluate_classifier_task,
    house_labels_task,
    labelled_images_task,
    train_classifier_task,
)
from tasks.core.prefect_cache import with_results_in
from tasks.houses.prefect_tasks import resolve_data_task
from tasks.lifecycle.prefect_tasks import record_run_task


def _run_name() -> str:
    return f"classify-{run_parameter('kind')}-{run_parameter('backbone')}-{datetime.now():%Y%m%d-%H%M%S}"


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
        prepare = with_results_in(labelled_images_task, config.cache, config.refresh_cache)
        images = prepare(config.cache, source, config.label_names, options.size(), config.test_size, config.split_seed,
                         config.on_bad_image)
        train = with_results_in(train_classifier_task, config.cache, config.refresh_cache)
        trained = train(config.cache, images, options, progress_key="classify-progress")
        data_info = {"source": str(source), "split": "by house" if config.data is None else "as the data says"}
        metrics = evaluate_classifier_task(trained, images, options, config.out, data_info)
        record_run_task(tracker, "house-photos-classify", config.out.name, config.model_dump(mode="json"), metrics,
                        trained[1]["history"], {"images.cache_key": images.folder.name},
                        {"report": config.out / "report.md", "report/plots": config.out / "plots"})
        return metrics
