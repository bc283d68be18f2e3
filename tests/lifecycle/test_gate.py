"""The promotion gate's decision on constructed metrics: what it guarantees, not where a training lands.
A candidate is promoted only when it beats the naive baseline, is no worse than the champion on the same
houses (within the tolerance) and its data did not drift; every failed condition is named."""

from __future__ import annotations

import itertools

import pytest

from tasks.lifecycle.gate import decide

NO_DRIFT = {"blocked": False, "reasons": []}
DRIFT = {"blocked": True, "reasons": ["area drifted (PSI 0.91 > 0.25)"]}


def _metrics(mape: float, baseline: float = 30.0) -> dict:
    return {"mape_mean": mape, "baseline": {"mape_mean": baseline}}


def _comparison(candidate: float, champion: float, houses: int = 20) -> dict:
    return {"houses": houses, "left_out": 0, "candidate": {"mape_mean": candidate},
            "champion": {"mape_mean": champion}}


@pytest.mark.parametrize("beats_baseline, within_tolerance, drifted",
                         list(itertools.product([True, False], repeat=3)))
def test_the_reasons_name_every_failed_condition_and_only_those(beats_baseline, within_tolerance, drifted):
    metrics = _metrics(20.0 if beats_baseline else 35.0)
    comparison = _comparison(21.0 if within_tolerance else 24.0, champion=20.0)
    promoted, reasons = decide(metrics, comparison, DRIFT if drifted else NO_DRIFT, tolerance=2.0)
    assert promoted == (beats_baseline and within_tolerance and not drifted)
    assert any("naive baseline" in r for r in reasons) == (not beats_baseline)
    assert any("worse than the champion's" in r for r in reasons) == (not within_tolerance)
    assert any("drifted" in r for r in reasons) == drifted
    if promoted:
        assert reasons == ["no worse than the champion on the same houses"]


@pytest.mark.parametrize("candidate, champion, tolerance, promoted", [
    (20.0, 20.0, 0.0, True),    # equal is no worse
    (20.01, 20.0, 0.0, False),  # any worse, without tolerance
    (22.0, 20.0, 2.0, True),    # exactly at the tolerance
    (22.01, 20.0, 2.0, False),  # past it
])
def test_the_champion_comparison_boundary(candidate, champion, tolerance, promoted):
    assert decide(_metrics(10.0), _comparison(candidate, champion), NO_DRIFT, tolerance)[0] is promoted


@pytest.mark.parametrize("mape, promoted", [(29.99, True), (30.0, False), (30.01, False)])
def test_the_baseline_boundary_a_tie_does_not_beat_it(mape, promoted):
    assert decide(_metrics(mape, baseline=30.0), None, NO_DRIFT, 0.0)[0] is promoted


def test_a_first_champion_needs_the_baseline_and_no_drift_only():
    assert decide(_metrics(20.0), None, NO_DRIFT, 0.0) == (True, ["first champion"])
    assert decide(_metrics(20.0), None, DRIFT, 0.0)[0] is False


def test_no_comparison_possible_is_never_a_promotion():
    promoted, reasons = decide(_metrics(5.0), {"houses": 0, "left_out": 12}, NO_DRIFT, 100.0)
    assert not promoted and "no comparison possible" in reasons[0]


@pytest.mark.parametrize("factor", [1.05, 1.5, 3.0])
def test_a_candidate_worse_by_construction_is_never_promoted(factor):
    """The candidate's prices are the champion's times a factor: its MAPE is worse on the same houses."""
    import numpy as np

    from tasks.training.metrics import regression_metrics

    rng = np.random.default_rng(0)
    actual = rng.uniform(1e5, 1e6, 50)
    champion_prices = actual * rng.uniform(0.9, 1.1, 50)
    champion = regression_metrics(actual, champion_prices)
    candidate = regression_metrics(actual, champion_prices * factor)
    comparison = {"houses": 50, "left_out": 0, "candidate": candidate, "champion": champion}
    promoted, reasons = decide({**candidate, "baseline": {"mape_mean": 60.0}}, comparison, NO_DRIFT, 0.0)
    assert not promoted and any("worse than the champion's" in r for r in reasons)


def test_the_gate_report_gives_the_range_coverage_beside_mape_and_prefers_coverage_near_the_level():
    from tasks.lifecycle.gate import markdown

    metrics = {**_metrics(18.0), "n_test": 20, "interval": {"level": 0.8, "coverage": 0.75, "mean_width": 250_000}}
    scores = {"mape_mean": 18.0, "mape_median": 15.0, "mae": 1e5, "rmse": 2e5, "r2": 0.5, "mean_width": 250_000}
    comparison = {"houses": 20, "left_out": 0, "candidate": {**scores, "coverage": 0.75},
                  "champion": {**scores, "coverage": 0.95, "mean_width": 400_000}}
    text = markdown(2, 1, metrics, comparison, True, ["no worse than the champion on the same houses"])
    assert "its 80 % price range covering 75.0 % of them (mean width $250,000)" in text
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    # 5 points from the level beats 15
    assert rows["80 % range coverage (%)"] == "| 80 % range coverage (%) | 75.0 | 95.0 | candidate |"
    assert rows["80 % range mean width ($)"].endswith("| candidate |")
    old_champion = {**comparison, "champion": scores | {"mean_width": 1.0}}
    old_champion["champion"].pop("mean_width")  # a champion from before intervals: "none", no verdict
    text = markdown(2, 1, metrics, old_champion, True, ["ok"])
    assert "| 80 % range coverage (%) | 75.0 | none | - |" in text
