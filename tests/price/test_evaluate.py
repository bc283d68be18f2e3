from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.core.tables import markdown_table
from tasks.training.metrics import baseline_metrics, regression_metrics


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
    from tasks.price.report import train_report

    metrics = {name: 1.0 for name in ("mape_mean", "mape_std", "mape_median", "mae", "rmse", "r2")}
    metrics |= {"n_train": 30, "n_validation": n_validation, "n_test": 10, "epochs": 20, "best_epoch": 12,
                "seconds": 3.0, "replicas": 1}
    data = {"source": "x", "houses_kept": 40, "houses_read": 40, "zipcodes_kept": 3, "min_houses_per_zip": 3,
            "split_seed": 42}
    text = train_report(metrics, dict(metrics), {"strategy": "cnn", "trainer": "fit"}, data,
                        {"mean": 1.0, "std": 1.0}, {}, None)
    assert expected in text


def test_prediction_rows_put_the_worst_houses_first_and_a_ceiling_shows_in_the_top_ratios():
    from tasks.price.evaluate import prediction_rows, top_price_ratios, worse_than_baseline

    actual = np.array([100.0, 200.0, 400.0, 800.0])
    predicted = np.array([110.0, 150.0, 400.0, 400.0])
    rows = prediction_rows(np.array([7, 8, 9, 10]), actual, predicted)
    assert [r["house"] for r in rows] == [10, 8, 7, 9]
    assert [r["error_pct"] for r in rows] == [-50.0, -25.0, 10.0, 0.0]
    assert top_price_ratios(actual, predicted, 2) == [0.5, 1.0]
    good = regression_metrics(actual, actual * 1.01)
    assert worse_than_baseline(good, baseline_metrics(actual, actual)) is None
    constant = regression_metrics(actual, np.full(4, 300.0))
    assert "no better than" in worse_than_baseline(constant, baseline_metrics(actual, actual))


def test_a_disk_full_during_the_report_keeps_the_previous_files_whole(tmp_path, monkeypatch):
    """Every file a reader may open (report.md, metrics.json, the model) is replaced whole or not at all."""
    import errno
    import json
    from pathlib import Path

    from tasks.price.evaluate import evaluate_model
    from tasks.price.options import PriceOptions
    from tasks.price.train import train_model
    from tests.fixtures import make_houses, run_stages

    houses = make_houses(tmp_path / "houses", [90000 + n % 3 for n in range(24)], photo_size=(24, 20))
    _, dataset = run_stages(houses, tmp_path / "cache", tile_size=8)
    options = PriceOptions(strategy="mlp", epochs=2, batch_size=4)
    result = train_model(dataset.train_path, dataset.encoders(), options, tmp_path / "work")
    done = result.summary()
    info = {"source": "first", "houses_read": 24, "houses_kept": 24, "zipcodes_kept": 3, "min_houses_per_zip": 3,
            "split_seed": 42}
    out = tmp_path / "out"
    evaluate_model(result.model_path, done, dataset, options, out, info, None)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    real = {"write_bytes": Path.write_bytes, "write_text": Path.write_text}

    def disk_fills_on_the_report(method):
        def write(self, data, *args, **kwargs):
            if "report" not in self.name:  # metrics.json, the model's files: written as usual
                return real[method](self, data, *args, **kwargs)
            data = data.encode() if isinstance(data, str) else data
            with open(self, "wb") as handle:
                handle.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write

    for method in real:
        monkeypatch.setattr(Path, method, disk_fills_on_the_report(method))
    with pytest.raises(OSError, match="No space left"):
        evaluate_model(result.model_path, done, dataset, options, out, {**info, "source": "second"}, None)
    monkeypatch.undo()
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after.keys() == before.keys()  # no temporary file left behind
    assert after[Path("report.md")] == before[Path("report.md")]  # the previous report, whole
    assert json.loads((out / "metrics.json").read_text())["n_test"] == dataset.n_test
