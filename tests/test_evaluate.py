from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.evaluate import baseline_metrics, markdown_table, regression_metrics


def test_metrics_against_hand_computed_values():
    actual = np.array([100.0, 200.0, 400.0])
    predicted = np.array([110.0, 150.0, 400.0])
    metrics = regression_metrics(actual, predicted)
    # absolute percentage errors: 10, 25, 0
    assert metrics["mape_mean"] == pytest.approx(35 / 3)
    assert metrics["mape_median"] == pytest.approx(10)
    mean_error = 35 / 3
    expected_std = math.sqrt(((10 - mean_error) ** 2 + (25 - mean_error) ** 2 + mean_error**2) / 3)
    assert metrics["mape_std"] == pytest.approx(expected_std)
    assert metrics["mae"] == pytest.approx(20)
    assert metrics["rmse"] == pytest.approx(math.sqrt((100 + 2500) / 3))
    mean = 700 / 3
    total = (100 - mean) ** 2 + (200 - mean) ** 2 + (400 - mean) ** 2
    assert metrics["r2"] == pytest.approx(1 - 2600 / total)


def test_perfect_predictions_and_baseline():
    actual = np.array([1.0, 2.0, 3.0])
    assert regression_metrics(actual, actual) == {"mape_mean": 0, "mape_std": 0, "mape_median": 0, "mae": 0,
                                                  "rmse": 0, "r2": 1}
    base = baseline_metrics(np.array([1.0, 2.0, 9.0]), actual)  # always predicts 2
    assert base["mae"] == pytest.approx(2 / 3)


def test_markdown_table():
    text = markdown_table([{"a": 1.23456, "b": "x"}, {"a": 0.001, "b": 123456.7}], ["a", "b"])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1.235 | x |", "| 0.001 | 123,457 |"]


@pytest.mark.parametrize("n_validation, expected", [(7, "best validation epoch 12"),
                                                    (0, "no validation share")])
def test_report_says_how_the_epochs_were_watched(n_validation, expected):
    from tasks.report import train_report

    metrics = {name: 1.0 for name in ("mape_mean", "mape_std", "mape_median", "mae", "rmse", "r2")}
    metrics |= {"n_train": 30, "n_validation": n_validation, "n_test": 10, "epochs": 20, "best_epoch": 12,
                "seconds": 3.0, "replicas": 1}
    data = {"source": "x", "houses_kept": 40, "houses_read": 40, "zipcodes_kept": 3, "min_houses_per_zip": 3,
            "split_seed": 42}
    text = train_report(metrics, dict(metrics), {"strategy": "cnn", "trainer": "fit"}, data,
                        {"mean": 1.0, "std": 1.0}, {}, None)
    assert expected in text
