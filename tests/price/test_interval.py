"""The price range: split conformal on out-of-fold |log(actual / predicted)| (tasks.price.interval). Pure numpy:
generated prices with known log-normal noise, so the nominal coverage is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tasks.core.errors import DataError
from tasks.price.interval import Interval, check_level, coverage, interval_metrics


def _houses(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(actual, predicted): the model knows each house's log price up to N(0, noise) (noise in log units)."""
    rng = np.random.default_rng(seed)
    predicted = np.exp(rng.uniform(np.log(1e5), np.log(3e6), n))
    return predicted * np.exp(rng.normal(0.0, noise, n)), predicted


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9])
def test_coverage_on_new_houses_is_the_level_within_5_points(level):
    calibration, test = _houses(400, 0.3, seed=1), _houses(4000, 0.3, seed=2)
    interval = Interval.calibrate(*calibration, folds=5)
    low, high = interval.bounds(test[1], level)
    assert abs(coverage(test[0], low, high) - level) <= 0.05
    # the half width is the noise's quantile: |N(0, 0.3)| has its level-quantile at 0.3 * z((1 + level) / 2)
    z = {0.5: 0.6745, 0.8: 1.2816, 0.9: 1.6449}[level]
    assert interval.half_width(level) == pytest.approx(0.3 * z, rel=0.15)


def test_the_range_is_the_conformal_quantile_of_the_scores():
    predicted = np.full(9, 100.0)
    actual = predicted * np.exp(np.arange(1, 10) / 10)  # scores 0.1 .. 0.9
    interval = Interval.calibrate(actual, predicted, folds=3)
    assert interval.half_width(0.8) == pytest.approx(0.8)  # the ceil((9 + 1) * 0.8) = 8th smallest
    assert interval.half_width(0.5) == pytest.approx(0.5)
    assert math.isinf(interval.half_width(0.95))  # ceil(10 * 0.95) = 10 > 9 houses: no finite range holds
    low, high = interval.bounds(np.array([200.0]), 0.8)
    assert low[0] == pytest.approx(200 / math.exp(0.8)) and high[0] == pytest.approx(200 * math.exp(0.8))


def test_wider_noise_gives_a_wider_range_and_metrics_report_it():
    narrow, wide = (Interval.calibrate(*_houses(500, noise, seed=3), folds=5) for noise in (0.1, 0.4))
    test = _houses(1000, 0.1, seed=4)
    found = interval_metrics(narrow, *test, 0.8)
    assert found["mean_width"] < interval_metrics(wide, *test, 0.8)["mean_width"]
    assert found["calibration_houses"] == 500 and found["folds"] == 5 and abs(found["coverage"] - 0.8) <= 0.05


def test_saved_as_json_and_read_back(tmp_path):
    interval = Interval.calibrate(*_houses(50, 0.2, seed=5), folds=4)
    path = interval.save(tmp_path / "interval.json")
    assert json.loads(path.read_text())["n"] == 50
    again = Interval.load(path)
    assert again.folds == 4 and again.half_width(0.8) == pytest.approx(interval.half_width(0.8), abs=1e-6)
    path.write_text("{not json")
    with pytest.raises(DataError, match="interval.json is unreadable"):
        Interval.load(path)


@pytest.mark.parametrize("level", [0.0, 1.0, 80.0, -0.2])
def test_a_level_outside_0_1_is_one_clear_line_naming_the_option(level):
    with pytest.raises(DataError, match=r"--interval-level .*between 0 and 1"):
        check_level(level)
