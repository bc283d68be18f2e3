"""The preprocess flow: resolve data -> ingest -> filter -> montages -> dataset -> outputs."""

from __future__ import annotations

import time
from datetime import datetime

from prefect import flow

from flows.config import PreprocessConfig, run_parameter
from flows.run_folder import staged
from tasks.core.prefect_cache import with_results_in
from tasks.houses.dataset import Preprocessed, summarize
from tasks.houses.prefect_tasks import (
    dataset_task,
    duplicates_task,
    filter_task,
    ingest_task,
    montages_task,
    resolve_data_task,
    write_outputs_task,
)


def _run_name() -> str:
    data = run_parameter("data", "data")
    return f"preprocess-{str(data).rstrip('/').rsplit('/', 1)[-1]}-{datetime.now():%Y%m%d-%H%M%S}"


@flow(name="preprocess", flow_run_name=_run_name)
def preprocess_flow(config: PreprocessConfig) -> Preprocessed:
    """Build the training-ready, cached dataset; writes summary.json under `config.out`."""
    config.check_paths()
    started = time.perf_counter()
    with staged(config) as config:
        data_dir = resolve_data_task(config.data, config.cache)
        ingested = ingest_task(data_dir, config.on_bad_house)
        houses, found = duplicates_task(config.cache, data_dir, ingested.houses, config.duplicates)
        kept = filter_task(houses, config.min_houses_per_zip)
        build_montages, build_dataset = (with_results_in(t, config.cache, config.refresh_cache)
                                         for t in (montages_task, dataset_task))
        built = build_montages(config.cache, data_dir, kept, config.tile_size, config.on_bad_house)
        dataset = build_dataset(config.cache, kept, built, config.test_size, config.seed)
        summary = summarize(config.model_dump(mode="json"), ingested.houses_read, ingested.skipped, built, dataset,
                            found.summary())
        summary["seconds"] = round(time.perf_counter() - started, 3)
        write_outputs_task(config.out, summary, ingested, dataset, built, config.export_montages, found)
        return Preprocessed(dataset, summary)
