"""The train flow: preprocess (subflow, cached) -> validate the data -> train (cached, resumable) ->
[cross-validate] -> evaluate -> record in MLflow -> register and gate (the champion changes only if
the new model passes)."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, unmapped
from prefect.context import get_run_context
from prefect.states import Completed

from flows.config import RunOptions, TrainConfig, run_parameter
from flows.preprocess import preprocess_flow
from flows.run_folder import staged
from tasks.core.cluster import cluster_task_runner
from tasks.core.prefect_cache import with_results_in
from tasks.houses.dataset import Dataset
from tasks.lifecycle.prefect_tasks import (
    manifest_sha256,
    promotion_gate_task,
    record_run_task,
    validate_data_task,
)
from tasks.price.options import PriceOptions
from tasks.price.prefect_tasks import (
    calibrate_task,
    cross_validate_fold_task,
    cross_validate_task,
    evaluate_task,
    price_code_version,
    train_task,
)


def _run_name() -> str:
    data = str(run_parameter("data")).rstrip("/").rsplit("/", 1)[-1]
    return f"train-{run_parameter('strategy')}-{run_parameter('trainer')}-{data}-{datetime.now():%Y%m%d-%H%M%S}"


@flow(name="cross-validate-folds", flow_run_name=lambda: f"cross-validate-folds-{datetime.now():%Y%m%d-%H%M%S}")
def cv_folds_flow(config: TrainConfig, dataset: Dataset, options: PriceOptions) -> list[dict]:
    """Each fold of --cv as a task on this flow's task runner (a Dask cluster's workers)."""
    fold = with_results_in(cross_validate_fold_task, config.cache, config.refresh_cache).with_options(
        timeout_seconds=None)  # on Dask workers' threads Prefect cannot enforce one; --time-limit still can
    return fold.map(unmapped(config.cache), unmapped(dataset), unmapped(options), unmapped(config.cv),
                    list(range(config.cv))).result()


@flow(name="train", flow_run_name=_run_name)
def train_flow(config: TrainConfig):
    """Train one model on the houses and write its report under `config.out`; with tracking, record it in
    MLflow, register it and promote it to champion if it passes the gate."""
    config.check_paths()
    tracker = config.tracker()  # an unreachable store stops the run here, before any work
    with staged(config) as config:
        preprocessed = preprocess_flow(config.preprocess_config())
        dataset, options = preprocessed.dataset, config.training_options()
        checked = validate_data_task(dataset, tracker, config.drift_threshold, config.out)
        train, cross_validate, calibrate = (with_results_in(t, config.cache, config.refresh_cache)
                                            for t in (train_task, cross_validate_task, calibrate_task))
        trained = train(config.cache, dataset, options, progress_key="train-progress")
        folds = None
        if config.cv and (config.workers or config.dask_address):  # the folds as tasks on the cluster
            runner = cluster_task_runner(config.workers, config.dask_address, get_run_context().client.api_url)
            folds = cv_folds_flow.with_options(task_runner=runner)(config, dataset, options)
        elif config.cv:
            folds = cross_validate(config.cache, dataset, options, config.cv)
        calibrated = calibrate(config.cache, dataset, options, config.interval_folds)
        metrics = evaluate_task(trained, dataset, options, config.out, data_info(config, preprocessed.summary), folds,
                                calibrated, config.interval_level)
        tags = {"data.manifest_sha256": manifest_sha256(config.out), "dataset.cache_key": dataset.folder.name,
                "code.version": price_code_version()[:12], "strategy": options.strategy}
        recorded = record_run_task(tracker, "house-prices", config.out.name, config.model_dump(mode="json"), metrics,
                                 trained[1]["history"], tags,
                                 {"report": config.out / "report.md", "report/plots": config.out / "plots",
                                  "": config.out / "data_profile.json"})
        if not (config.register_model and tracker.enabled):
            return metrics
        verdict = promotion_gate_task(tracker, recorded, config.out, dataset, metrics, checked,
                                      config.promotion_tolerance, tags)
        message = ("Model not registered yet: " + verdict["reasons"][0] if verdict.get("waiting") else
                   f"Model unchanged (version {verdict['version']})" if verdict.get("unchanged") else
                   f"Model version {verdict['version']} promoted to champion" if verdict["promoted"] else
                   f"Model version {verdict['version']} NOT promoted: " + "; ".join(verdict["reasons"]))
        return Completed(message=message, data={**metrics, "gate": verdict})


def data_info(config: RunOptions, summary: dict) -> dict:
    """What a report says about the data, from the preprocessing summary of this run."""
    return {"source": config.data, "houses_read": summary["houses_read"], "houses_kept": summary["houses_kept"],
            "zipcodes_kept": summary["zipcodes_kept"], "min_houses_per_zip": config.min_houses_per_zip,
            "split_seed": config.split_seed, "duplicates": summary.get("duplicates", {}).get("counts")}
