"""The lifecycle as Prefect tasks: validate the data, record the run in MLflow, register and gate."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pyarrow as pa
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.runtime import deployment, flow_run

from tasks.core import parquet
from tasks.core.artifacts import artifact_key, publish_markdown
from tasks.core.errors import DataError
from tasks.core.files import atomic_copy, atomic_write_bytes, atomic_write_json
from tasks.core.hashing import file_sha256
from tasks.core.prefect_cache import cached, refreshing
from tasks.houses.dataset import Dataset
from tasks.houses.ingest import ATTRIBUTE_COLUMNS
from tasks.lifecycle import gate, registry, scoring, tracking, validation
from tasks.lifecycle.tracking import Tracking

SCORE_STAGE = "score"


def run_tags(extra: dict[str, str | None]) -> dict[str, str]:
    """Tags that tie an MLflow run to the Prefect flow run that made it."""
    return {"prefect.flow_run_id": str(flow_run.id), "prefect.flow_run_name": flow_run.name,
            "prefect.deployment": deployment.name or "none (run from the command line)", **extra}


def champion_profile(tracker: Tracking) -> dict | None:
    """The champion's training-data profile, or None (no champion yet, or it has no profile)."""
    import mlflow.artifacts

    found = registry.champion(tracker) if tracker.enabled else None
    if found is None or found.run_id is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=found.run_id, artifact_path=validation.PROFILE_FILE,
                                                       dst_path=tmp, tracking_uri=tracker.uri)
            return json.loads(Path(path).read_text())
        except Exception as error:  # noqa: BLE001 - reported: drift cannot be checked
            get_run_logger().warning("The champion (version %d) has no readable %s (%s): drift not checked",
                                     found.number, validation.PROFILE_FILE, type(error).__name__)
            return None


@task(name="validate-data", cache_policy=NO_CACHE)
def validate_data_task(dataset: Dataset, tracker: Tracking, threshold: float, out: Path) -> dict:
    """Schema and ranges of the training houses (stop on hard problems), drift against the champion's data."""
    houses = parquet.read_table(dataset.train_path, columns=["house", *ATTRIBUTE_COLUMNS]).to_pandas()
    report = validation.validate(houses, champion_profile(tracker), threshold)
    atomic_write_json(out / validation.PROFILE_FILE, report["profile"])
    publish_markdown(validation.markdown(report), "data-validation", "Data validation before training", out)
    log = get_run_logger()
    log.info("Data validation passed for %d training houses%s", report["houses"],
             "; drift blocks promotion: " + "; ".join(report["drift"]["reasons"]) if report["drift"]["blocked"]
             else "")
    return {"houses": report["houses"], "drift": report["drift"]}


@task(name="record-run", cache_policy=NO_CACHE)
def record_run_task(tracker: Tracking, experiment: str, run_name: str, params: dict, metrics: dict,
                    history: dict, tags: dict, artifacts: dict[str, Path]) -> str | None:
    """One MLflow run with the flow's config, metrics (final and per epoch), report and plots; its id."""
    if not tracker.enabled:
        return None
    run_id = tracking.log_run(tracker, experiment, run_name, params, tracking.numbers(metrics), history,
                              run_tags(tags), artifacts)
    from prefect.artifacts import create_link_artifact

    link = tracking.run_link(tracker, run_id)
    local = not tracker.uri.startswith(("http://", "https://"))
    get_run_logger().info("MLflow run %s: %s%s", run_id, link, " (start the UI with make mlflow-ui)" if local else "")
    create_link_artifact(link, link_text=f"MLflow run {run_name}", key=artifact_key("mlflow", experiment),
                         description="This flow run's record in MLflow" + (" (make mlflow-ui)" if local else ""))
    return run_id


def _comparison(tracker: Tracking, champion: registry.Version, candidate_dir: Path, dataset: Dataset,
                log) -> tuple[dict | None, str | None]:
    """(candidate vs champion on the same test houses, or None with why the champion cannot be used)."""
    from tasks.price.predict import PriceModel

    with tempfile.TemporaryDirectory() as tmp:
        try:
            champion_model = PriceModel.load(registry.model_folder(tracker, champion, Path(tmp)))
        except DataError as error:
            log.warning("%s", error)
            return None, error.message
        houses, montages = gate.test_houses(dataset.test_path)
        return gate.compare(PriceModel.load(candidate_dir), champion_model, houses, montages), None


@task(name="promotion-gate", cache_policy=NO_CACHE)
def promotion_gate_task(tracker: Tracking, run_id: str | None, out: Path, dataset: Dataset, metrics: dict,
                        checked: dict, tolerance: float, tags: dict) -> dict:
    """Register the model as a new version; make it champion only if it passes the gate; say why."""
    log = get_run_logger()
    if run_id is None:
        return {"registered": False, "promoted": False, "reasons": ["tracking is off: nothing registered"]}
    model_dir = out / "model"
    same = registry.with_model(tracker, file_sha256(model_dir / "model.keras"))
    if same is not None:  # a cached training: the very model is registered already
        log.info("The model is version %d already (same model.keras): nothing new to register or gate", same.number)
        return {"registered": True, "version": same.number, "promoted": same.is_champion, "unchanged": True,
                "reasons": [f"unchanged: the same model as version {same.number}"],
                "champion": (registry.champion(tracker) or same).number}
    candidate = registry.register(tracker, run_id, model_dir, {**tags, "strategy": metrics["strategy"],
                                                               "test_mape": f"{metrics['mape_mean']:.4f}"})
    with registry.promotion_lock(log):
        champion = registry.champion(tracker)
        comparison, unusable = (None, None) if champion is None else _comparison(tracker, champion, model_dir,
                                                                                 dataset, log)
        promoted, reasons = gate.decide(metrics, comparison, checked["drift"], tolerance)
        if unusable:
            reasons.append(f"the champion (version {champion.number}) cannot be used: {unusable}")
        if promoted:
            registry.crown(tracker, candidate.number, champion)
    client = tracker.client()
    client.set_model_version_tag(registry.MODEL_NAME, str(candidate.number), "gate",
                                 "promoted" if promoted else "rejected")
    client.set_model_version_tag(registry.MODEL_NAME, str(candidate.number), "gate_reasons", "; ".join(reasons))
    text = gate.markdown(candidate.number, champion.number if champion else None, metrics, comparison, promoted,
                         reasons)
    atomic_write_json(out / "gate.json", {"version": candidate.number, "promoted": promoted, "reasons": reasons,
                                          "champion_before": champion.number if champion else None,
                                          "comparison": comparison})
    (out / "gate.md").write_text(text)
    publish_markdown(text, "promotion-gate", "Candidate vs champion", out)
    log.info("Model version %d %s: %s", candidate.number, "promoted to champion" if promoted else
             "NOT promoted", "; ".join(reasons))
    if not promoted:
        from prefect.events import emit_event

        resource = {"prefect.resource.id": f"house-pipeline.model.{registry.MODEL_NAME}",
                    "prefect.resource.name": registry.MODEL_NAME}
        emit_event(registry.NOT_PROMOTED_EVENT, resource=resource,
                   payload={"version": candidate.number, "reasons": reasons,
                            "champion": champion.number if champion else None})
    return {"registered": True, "version": candidate.number, "promoted": promoted, "reasons": reasons,
            "champion": candidate.number if promoted else (champion.number if champion else None)}


def manifest_sha256(out: Path) -> str | None:
    path = out / "preprocess" / "manifest.json"
    return file_sha256(path) if path.is_file() else None


def _scores_entry(inputs: dict) -> tuple[str, bool]:
    from tasks.core.cache import Cache

    _, key = scoring.plan_scoring(inputs["houses_csv"], inputs["photos_dir"], inputs["version"].tags)
    return key, Cache(inputs["cache_dir"]).lookup(SCORE_STAGE, key) is not None


@task(**cached("score-houses", _scores_entry))
def score_task(tracker: Tracking, version: registry.Version, houses_csv: Path, photos_dir: Path | None,
               cache_dir: Path) -> Path:
    """Price the houses with a registry version (its files verified first); the cached predictions file."""
    from tasks.core.cache import Cache
    from tasks.price.predict import PriceModel

    log = get_run_logger()
    cache = Cache(cache_dir, log, refreshing())
    houses, key = scoring.plan_scoring(houses_csv, photos_dir, version.tags)
    found = cache.lookup(SCORE_STAGE, key)
    if found is not None:
        return found / "predictions.parquet"
    with tempfile.TemporaryDirectory() as tmp:
        price_model = PriceModel.load(registry.model_folder(tracker, version, Path(tmp)))
        if price_model.needs_photos() and photos_dir is None:
            raise DataError(f"version {version.number} is a {price_model.strategy} model and needs photos: pass "
                            "--photos DIR (with {house}_{room}.jpg files)")
        prices = scoring.price_frame(price_model, houses)
    table = scoring.scored_table(houses, prices, version.number)
    with cache.write(SCORE_STAGE, key) as folder:
        parquet.write_table(pa.Table.from_pandas(table, preserve_index=False), folder / "predictions.parquet")
    log.info("Priced %d houses with %s version %d", len(table), registry.MODEL_NAME, version.number)
    return cache.entry_path(SCORE_STAGE, key) / "predictions.parquet"


@task(name="write-scores", cache_policy=NO_CACHE)
def write_scores_task(predictions: Path, out: Path) -> dict:
    """predictions.parquet and predictions.csv under --out; a table artifact of the first rows."""
    from prefect.artifacts import create_table_artifact

    table = parquet.read_table(predictions).to_pandas()
    atomic_copy(predictions, out / "predictions.parquet")
    atomic_write_bytes(out / "predictions.csv", table.to_csv(index=False).encode())
    create_table_artifact(table.head(50).to_dict(orient="records"), key="scores",
                          description=f"Predicted prices (model version {int(table['model_version'].iloc[0])})")
    return {"houses": len(table), "version": int(table["model_version"].iloc[0]),
            "parquet": str(out / "predictions.parquet"), "csv": str(out / "predictions.csv")}
