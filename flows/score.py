"""The score flow: price new houses with a registered model (the champion by default), cached by content."""

from __future__ import annotations

from datetime import datetime

from prefect import flow

from flows.config import ScoreConfig
from flows.run_folder import staged
from tasks.core.prefect_cache import with_results_in
from tasks.lifecycle.prefect_tasks import score_task, write_scores_task


@flow(name="score", flow_run_name=lambda: f"score-{datetime.now():%Y%m%d-%H%M%S}")
def score_flow(config: ScoreConfig) -> dict:
    """Predictions for the houses of `config.houses` under `config.out` (Parquet and CSV, with the model
    version on every row)."""
    config.check_paths()
    tracker, version = config.tracker(), config.registry_version()
    with staged(config) as config:
        score = with_results_in(score_task, config.cache, config.refresh_cache)
        predictions = score(tracker, version, config.houses, config.photos, config.cache, config.interval_level,
                            config.explain)
        return write_scores_task(predictions, config.out)
