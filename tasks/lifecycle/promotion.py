"""Registering a trained price model and its promotion gate, as one plain function: the gate task of a
train run and the outbox's replay (`models registry sync`) both call it."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from tasks.core.errors import DataError
from tasks.core.hashing import file_sha256
from tasks.lifecycle import gate, registry
from tasks.lifecycle.tracking import Tracking, TrackingUnavailable, unavailable


def _comparison(tracker: Tracking, champion: registry.Version, candidate_dir: Path, test_path: Path,
                log: logging.Logger | logging.LoggerAdapter) -> tuple[dict | None, str | None]:
    """(candidate vs champion on the same test houses, or None with why the champion cannot be used)."""
    from tasks.price.predict import PriceModel

    with tempfile.TemporaryDirectory() as tmp:
        try:
            champion_model = PriceModel.load(registry.model_folder(tracker, champion, Path(tmp)))
        except DataError as error:
            log.warning("%s", error)
            return None, error.message
        houses, montages = gate.test_houses(test_path)
        return gate.compare(PriceModel.load(candidate_dir), champion_model, houses, montages), None


def register_and_gate(tracker: Tracking, run_id: str, model_dir: Path, test_path: Path, metrics: dict, drift: dict,
                      tolerance: float, tags: dict, log: logging.Logger | logging.LoggerAdapter) -> dict:
    """Register the model folder as a new version of the price model and make it champion only if it passes
    the gate. The verdict: registered, version, promoted, reasons, champion (after), champion_before,
    comparison; `unchanged` when this very model (same model.keras) is a version already.
    A store that stops answering raises `TrackingUnavailable`."""
    try:
        return _register_and_gate(tracker, run_id, model_dir, test_path, metrics, drift, tolerance, tags, log)
    except Exception as error:
        reason = unavailable(error)
        if reason is None:
            raise
        raise TrackingUnavailable(reason) from error


def _register_and_gate(tracker: Tracking, run_id: str, model_dir: Path, test_path: Path, metrics: dict,
                       drift: dict, tolerance: float, tags: dict, log: logging.Logger | logging.LoggerAdapter) -> dict:
    same = registry.with_model(tracker, file_sha256(model_dir / "model.keras"))
    if same is not None and "gate" in same.tags:  # a cached training: the very model is registered and gated
        log.info("The model is version %d already (same model.keras): nothing new to register or gate", same.number)
        return {"registered": True, "version": same.number, "promoted": same.is_champion, "unchanged": True,
                "reasons": [f"unchanged: the same model as version {same.number}"],
                "champion": (registry.champion(tracker) or same).number}
    # A version registered before the store went away, but never gated, is gated now (not registered twice).
    interval = metrics.get("interval") or {}
    ranged = {} if not interval else {"interval_level": f"{interval['level']:g}",
                                      "test_coverage": f"{interval['coverage']:.4f}",
                                      "test_interval_mean_width": f"{interval['mean_width']:.0f}"}
    candidate = same or registry.register(tracker, run_id, model_dir, {**tags, "strategy": metrics["strategy"],
                                                                       "test_mape": f"{metrics['mape_mean']:.4f}",
                                                                       **ranged})
    with registry.promotion_lock(log):
        champion = registry.champion(tracker)
        comparison, unusable = (None, None) if champion is None else _comparison(tracker, champion, model_dir,
                                                                                 test_path, log)
        promoted, reasons = gate.decide(metrics, comparison, drift, tolerance)
        if unusable:
            reasons.append(f"the champion (version {champion.number}) cannot be used: {unusable}")
        if promoted:
            registry.crown(tracker, candidate.number, champion)
    client = tracker.client()
    client.set_model_version_tag(registry.MODEL_NAME, str(candidate.number), "gate_reasons", "; ".join(reasons))
    client.set_model_version_tag(registry.MODEL_NAME, str(candidate.number), "gate",
                                 "promoted" if promoted else "rejected")  # last: a gated version has this tag
    before = champion.number if champion else None
    return {"registered": True, "version": candidate.number, "promoted": promoted, "reasons": reasons,
            "champion": candidate.number if promoted else before, "champion_before": before,
            "comparison": comparison}


def verdict_line(verdict: dict) -> str:
    """"version 3 promoted to champion", "version 4 NOT promoted: REASONS", "version 1 unchanged"."""
    if verdict.get("unchanged"):
        return f"version {verdict['version']} unchanged"
    return f"version {verdict['version']} " + ("promoted to champion" if verdict["promoted"] else
                                               "NOT promoted: " + "; ".join(verdict["reasons"]))
