"""The lifecycle as Prefect tasks: validate the data, record the run in MLflow, register and gate."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
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
from tasks.core.storage import shown
from tasks.houses.dataset import Dataset
from tasks.houses.ingest import ATTRIBUTE_COLUMNS
from tasks.lifecycle import gate, outbox, registry, scoring, tracking, validation
from tasks.lifecycle.promotion import register_and_gate, verdict_line
from tasks.lifecycle.tracking import Tracking, TrackingUnavailable
from tasks.price.interval import DEFAULT_LEVEL

SCORE_STAGE = "score"


def run_tags(extra: dict[str, str | None]) -> dict[str, str]:
    """Tags that tie an MLflow run to the Prefect flow run that made it."""
    return {"prefect.flow_run_id": str(flow_run.id), "prefect.flow_run_name": flow_run.name,
            "prefect.deployment": deployment.name or "none (run from the command line)", **extra}


def champion_profile(tracker: Tracking) -> dict | None:
    """The champion's training-data profile, or None (no champion yet, or it has no profile)."""
    import mlflow.artifacts

    found = registry.champion(tracker) if tracker.enabled and tracker.available else None
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


@dataclass(frozen=True)
class Recorded:
    """A run's MLflow record: its id, or the outbox entry where it waits (the store stopped answering)."""

    run_id: str | None = None
    waiting: Path | None = None


def _deferred(what: str, reason: str, entry: Path) -> None:
    get_run_logger().warning(
        "The tracking store does not answer (%s): %s waits in %s; `house-pipeline models registry sync` writes it "
        "(the next tracked run does too)", reason, what, entry)


@task(name="record-run", cache_policy=NO_CACHE)
def record_run_task(tracker: Tracking, experiment: str, run_name: str, params: dict, metrics: dict,
                    history: dict, tags: dict, artifacts: dict[str, Path]) -> Recorded:
    """One MLflow run with the flow's config, metrics (final and per epoch), report and plots; records that
    waited in the outbox for this store are written first. If the store does not answer, the record waits."""
    if not tracker.enabled:
        return Recorded()
    log = get_run_logger()
    numbers, tags = tracking.numbers(metrics), run_tags(tags)
    try:
        if not tracker.available:
            raise TrackingUnavailable("unreachable when the run started (--tracking optional)")
        for done in outbox.sync(tracker, log):
            log.info("Wrote the waiting MLflow record %s (%s)%s", done["run_name"], done["run_id"],
                     f": {verdict_line(done['verdict'])}" if done["verdict"] else "")
        run_id = tracking.log_run(tracker, experiment, run_name, params, numbers, history, tags, artifacts)
    except TrackingUnavailable as error:
        entry = outbox.defer(tracker, error.reason, experiment, run_name, params, numbers, history, tags,
                             artifacts, partial_run=error.partial_run)
        _deferred(f"the record of {run_name}", error.reason, entry)
        return Recorded(waiting=entry)
    from prefect.artifacts import create_link_artifact

    link = tracking.run_link(tracker, run_id)
    local = not tracker.uri.startswith(("http://", "https://"))
    log.info("MLflow run %s: %s%s", run_id, link, " (start the UI with make mlflow-ui)" if local else "")
    create_link_artifact(link, link_text=f"MLflow run {run_name}", key=artifact_key("mlflow", experiment),
                         description="This flow run's record in MLflow" + (" (make mlflow-ui)" if local else ""))
    return Recorded(run_id=run_id)


@task(name="promotion-gate", cache_policy=NO_CACHE)
def promotion_gate_task(tracker: Tracking, recorded: Recorded, out: Path, dataset: Dataset, metrics: dict,
                        checked: dict, tolerance: float, tags: dict) -> dict:
    """Register the model as a new version; make it champion only if it passes the gate; say why. If the
    store does not answer, the registration and gate wait in the outbox with the run's record."""
    log = get_run_logger()
    model_dir = out / "model"
    gate_inputs = {"metrics": metrics, "drift": checked["drift"], "tolerance": tolerance, "tags": tags}
    waiting = {"registered": False, "promoted": False, "waiting": True,
               "reasons": ["the tracking store does not answer: registration and gate wait in the outbox "
                           "(`house-pipeline models registry sync`)"]}
    if recorded.waiting is not None:
        outbox.add_gate(recorded.waiting, gate_inputs, model_dir, dataset.test_path)
        return waiting
    if recorded.run_id is None:
        return {"registered": False, "promoted": False, "reasons": ["tracking is off: nothing registered"]}
    try:
        verdict = register_and_gate(tracker, recorded.run_id, model_dir, dataset.test_path, metrics,
                                    checked["drift"], tolerance, tags, log)
    except TrackingUnavailable as error:
        entry = outbox.defer(tracker, error.reason, "", "", {}, {}, {}, {}, {}, run_id=recorded.run_id,
                             gate=gate_inputs, model_dir=model_dir, test_path=dataset.test_path)
        _deferred("the registration and gate of this run's model", error.reason, entry)
        return waiting
    if verdict.get("unchanged"):
        return verdict
    promoted, reasons, before = verdict["promoted"], verdict["reasons"], verdict["champion_before"]
    text = gate.markdown(verdict["version"], before, metrics, verdict["comparison"], promoted, reasons)
    atomic_write_json(out / "gate.json", {key: verdict[key] for key in
                                          ("version", "promoted", "reasons", "champion_before", "comparison")})
    atomic_write_bytes(out / "gate.md", text.encode())
    publish_markdown(text, "promotion-gate", "Candidate vs champion", out)
    log.info("Model %s", verdict_line(verdict))
    if not promoted:
        from prefect.events import emit_event

        resource = {"prefect.resource.id": f"house-pipeline.model.{registry.MODEL_NAME}",
                    "prefect.resource.name": registry.MODEL_NAME}
        emit_event(registry.NOT_PROMOTED_EVENT, resource=resource,
                   payload={"version": verdict["version"], "reasons": reasons, "champion": before})
    return {key: verdict[key] for key in ("registered", "version", "promoted", "reasons", "champion")}


def manifest_sha256(out: Path) -> str | None:
    path = out / "preprocess" / "manifest.json"
    return file_sha256(path) if path.is_file() else None


def _scores_entry(inputs: dict) -> tuple[str, bool]:
    from tasks.core.cache import Cache

    _, key = scoring.plan_scoring(inputs["houses_csv"], inputs["photos_dir"], inputs["version"].tags,
                                  inputs["level"], inputs["explain"])
    return key, Cache(inputs["cache_dir"]).lookup(SCORE_STAGE, key) is not None


@task(**cached("score-houses", _scores_entry))
def score_task(tracker: Tracking, version: registry.Version, houses_csv: Path, photos_dir: Path | None,
               cache_dir: Path, level: float = DEFAULT_LEVEL, explain: bool = False) -> Path:
    """Price the houses with a registry version (its files verified first), each price with its range at `level`
    and, with `explain`, each input's effect; the cached predictions file."""
    from tasks.core.cache import Cache
    from tasks.price.predict import PriceModel

    log = get_run_logger()
    cache = Cache(cache_dir, log, refreshing())
    houses, key = scoring.plan_scoring(houses_csv, photos_dir, version.tags, level, explain)
    found = cache.lookup(SCORE_STAGE, key)
    if found is not None:
        return found / "predictions.parquet"
    with tempfile.TemporaryDirectory() as tmp:
        price_model = PriceModel.load(registry.model_folder(tracker, version, Path(tmp)))
        if price_model.needs_photos() and photos_dir is None:
            raise DataError(f"version {version.number} is a {price_model.strategy} model and needs photos: pass "
                            "--photos DIR (with {house}_{room}.jpg files)")
        prices = scoring.price_frame(price_model, houses, level, explain)
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
            "parquet": shown(out / "predictions.parquet"), "csv": shown(out / "predictions.csv")}
