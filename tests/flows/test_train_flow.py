"""`python -m flows train`, `compare` and `predict` end to end against a real Prefect API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fixtures import make_houses, read_artifact

SMALL = ("--min-houses-per-zip", "3", "--tile-size", "8", "--epochs", "2", "--batch-size", "4")
METRIC_KEYS = {"mape_mean", "mape_std", "mape_median", "mae", "rmse", "r2", "n_train", "n_test", "strategy",
               "trainer", "epochs", "seconds"}


@pytest.fixture(scope="module")
def forty_houses(tmp_path_factory) -> Path:
    return make_houses(tmp_path_factory.mktemp("forty") / "houses", [90000 + n % 3 for n in range(40)],
                       photo_size=(24, 20))


def test_train_writes_metrics_report_plots_model_and_artifacts(run_cli, prefect_api, forty_houses, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "--data", forty_houses, "--out", out, "--cache", tmp_path / "cache",
                     "--strategy", "mixed", "--cv", "2", *SMALL)
    assert "Report:" in result.stdout and "Test MAPE" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["n_test"] == 10 and metrics["n_train"] == 30 and metrics["epochs"] == 2
    assert set(metrics["cv"]["mape_mean"]) == {"mean", "std"} and metrics["cv"]["k"] == 2
    report = (out / "report.md").read_text()
    for heading in ("## Data", "## Parameters", "## Metrics on the test houses", "baseline (train median)",
                    "2-fold cross-validation", "![loss per epoch](plots/loss.png)"):
        assert heading in report
    for plot in ("loss.png", "predicted_vs_actual.png", "residuals.png"):
        assert (out / "plots" / plot).stat().st_size > 1000
    assert {p.name for p in (out / "model").iterdir()} == {"model.keras", "encoders.json", "training.json"}
    assert "MAPE mean" in read_artifact(prefect_api, "train-metrics").data
    assert "## Metrics on the test houses" in read_artifact(prefect_api, "train-report").data
    assert read_artifact(prefect_api, "train-progress").data == 100.0

    again = run_cli("train", "--data", forty_houses, "--out", tmp_path / "again", "--cache", tmp_path / "cache",
                    "--strategy", "mixed", *SMALL)
    assert "Reusing the trained model" in again.stdout + again.stderr


def test_predict_prices_a_new_house_and_refuses_unknown_zip(run_cli, forty_houses, tmp_path):
    out = tmp_path / "run"
    run_cli("train", "--data", forty_houses, "--out", out, "--cache", tmp_path / "cache", "--strategy", "mixed",
            *SMALL)
    photos = tmp_path / "photos"
    photos.mkdir()
    for kind in ("bathroom", "bedroom", "frontal", "kitchen"):
        shutil.copyfile(forty_houses / f"3_{kind}.jpg", photos / f"77_{kind}.jpg")
    houses = tmp_path / "new.csv"
    houses.write_text("house,bedrooms,bathrooms,area,zipcode\n77,3,2,1800,90001\n")
    result = run_cli("predict", "--model", out / "model", "--house", houses, "--photos", photos)
    assert "77" in result.stdout and "$" in result.stdout
    houses.write_text("house,bedrooms,bathrooms,area,zipcode\n77,3,2,1800,12345\n")
    refused = run_cli("predict", "--model", out / "model", "--house", houses, "--photos", photos, check=False)
    assert refused.returncode == 2 and "zip code(s) [12345] were not seen in training" in refused.stderr
    (photos / "77_kitchen.jpg").unlink()
    houses.write_text("house,bedrooms,bathrooms,area,zipcode\n77,3,2,1800,90001\n")
    missing = run_cli("predict", "--model", out / "model", "--house", houses, "--photos", photos, check=False)
    assert missing.returncode == 2 and "77_kitchen.jpg" in missing.stderr


def test_compare_writes_a_leaderboard(run_cli, forty_houses, tmp_path):
    out = tmp_path / "cmp"
    result = run_cli("compare", "--data", forty_houses, "--out", out, "--cache", tmp_path / "cache",
                     "--strategies", "mlp,mixed", "--trainers", "fit,batch", "--max-parallel", "2", *SMALL)
    assert "Leaderboard:" in result.stdout
    lines = (out / "leaderboard.csv").read_text().splitlines()
    assert lines[0].startswith("rank,name,strategy,trainer,mape_mean")
    assert len(lines) == 5
    assert {p.name for p in out.iterdir()} >= {"leaderboard.md", "leaderboard.png", "mlp-fit", "mixed-batch"}


def test_compare_refuses_an_empty_list_before_any_work(run_cli, forty_houses, tmp_path):
    result = run_cli("compare", "--data", forty_houses, "--out", tmp_path / "cmp", "--cache", tmp_path / "cache",
                     "--strategies", ",", check=False)
    assert result.returncode == 2 and "strategies" in result.stderr
    assert not (tmp_path / "cache").exists()
