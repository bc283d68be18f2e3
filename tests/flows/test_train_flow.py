"""`python -m flows train`, `compare` and `predict` end to end against a real Prefect API. One trained run
is shared by the tests that read it."""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.fixtures import assert_plot, client_call, make_houses, overlap_seconds, read_artifact, task_runs

SMALL = ("--interval-folds", "2", "--min-houses-per-zip", "3", "--tile-size", "8", "--epochs", "2", "--batch-size", "4")

pytestmark = pytest.mark.slow  # every test here starts flows in subprocesses
METRIC_KEYS = {"mape_mean", "mape_std", "mape_median", "mae", "rmse", "r2", "n_train", "n_test", "strategy",
               "trainer", "epochs", "seconds"}


@pytest.fixture(scope="module")
def forty_houses(tmp_path_factory) -> Path:
    return make_houses(tmp_path_factory.mktemp("forty") / "houses", [90000 + n % 3 for n in range(40)],
                       photo_size=(24, 20))


@pytest.fixture(scope="module")
def trained(run_cli, prefect_api, forty_houses, tmp_path_factory):
    """One `train --strategy mixed --cv 2` run: (its --out, its cache, its stdout)."""
    folder = tmp_path_factory.mktemp("train")
    out, cache = folder / "run", folder / "cache"
    result = run_cli("train", "--data", forty_houses, "--out", out, "--cache", cache, "--strategy", "mixed",
                     "--cv", "2", *SMALL)
    return out, cache, result.stdout + result.stderr


def _train_entries(cache: Path) -> dict[str, int]:
    """Each finished training in the cache: its model file's modification time (ns)."""
    return {p.parent.name: p.stat().st_mtime_ns for p in (cache / "train").glob("*/model.keras")}


def test_train_writes_metrics_report_plots_model_and_artifacts(trained, prefect_api):
    out, _, stdout = trained
    assert "Report:" in stdout and "Test MAPE" in stdout
    metrics = json.loads((out / "metrics.json").read_text())
    noise = [line for line in stdout.splitlines() if any(mark in line for mark in (
        "| ERROR", "| WARNING", " E tensorflow", "Warning:", "Traceback")) and "worse than no model" not in line]
    assert noise == []  # a run prints no error or warning lines, but the one about its model if it deserves it
    # Two epochs on 30 houses: the model may be worse than predicting the median; then, and only then, it says so.
    assert ("Warning: this model is worse than no model" in stdout) == bool(metrics["warning"])
    assert ("**Warning: this model is worse than no model**" in (out / "report.md").read_text()) == \
        bool(metrics["warning"])
    with (out / "predictions.csv").open() as file:
        rows = list(csv.DictReader(file))
    players = ["bedrooms", "bathrooms", "area", "zipcode", "bathroom", "bedroom", "frontal", "kitchen"]
    assert len(rows) == 10 and list(rows[0]) == ["house", "actual_price", "predicted_price", "error_pct", "price_low",
                                                 "price_high", "in_range", *(f"effect_{p}" for p in players)]
    for row in rows:  # each house's effects add up to its price less the average train house's (columns rounded)
        assert sum(float(row[f"effect_{p}"]) for p in players) == pytest.approx(
            float(row["predicted_price"]) - metrics["base_price"], abs=len(players) + 1)
    interval = metrics["interval"]
    assert interval["level"] == 0.8 and interval["folds"] == 2 and interval["calibration_houses"] == 30
    assert interval["coverage"] == pytest.approx(np.mean([r["in_range"] == "True" for r in rows]))
    assert set(metrics["importance"]) == set(players)
    errors = [float(r["error_pct"]) for r in rows]
    assert errors == sorted(errors, key=abs, reverse=True)
    assert np.mean(np.abs(errors)) == pytest.approx(metrics["mape_mean"], abs=0.01)
    assert len(metrics["top5_price_ratios"]) == 5
    assert METRIC_KEYS <= set(metrics)
    assert metrics["n_test"] == 10 and metrics["n_train"] == 30 and metrics["epochs"] == 2
    assert set(metrics["cv"]["mape_mean"]) == {"mean", "std"} and metrics["cv"]["k"] == 2
    report = (out / "report.md").read_text()
    for heading in ("## Data", "## Parameters", "## Metrics on the test houses", "baseline (train median)",
                    "2-fold cross-validation", "![loss per epoch](plots/loss.png)", "## How sure: the 80 % price range",
                    "### Why it priced them so", "## What moves the prices"):
        assert heading in report
    for plot in ("loss.png", "predicted_vs_actual.png", "residuals.png", "importance.png"):
        assert_plot(out / "plots" / plot)
    assert {p.name for p in (out / "model").iterdir()} == {"model.keras", "encoders.json", "training.json",
                                                         "interval.json", "baseline.json"}
    table = {row["metric"]: row["model"] for row in json.loads(read_artifact(prefect_api, "train-metrics").data)}
    assert table["MAPE mean (%)"] == pytest.approx(metrics["mape_mean"], abs=1e-4)
    assert "## Metrics on the test houses" in read_artifact(prefect_api, "train-report").data
    assert read_artifact(prefect_api, "train-progress").data == 100.0


def test_a_rerun_reuses_the_trained_model_and_a_changed_option_trains_anew(trained, run_cli, forty_houses,
                                                                             tmp_path):
    out, cache, _ = trained
    before = _train_entries(cache)
    assert len(before) == 3  # the model and the two cross-validation folds
    again = run_cli("train", "--data", forty_houses, "--out", tmp_path / "again", "--cache", cache,
                    "--strategy", "mixed", *SMALL)
    assert re.search(r"Task run 'train-\w+' - Finished in state Cached", again.stdout + again.stderr)
    assert _train_entries(cache) == before  # no model file written again
    first, second = (json.loads((o / "metrics.json").read_text()) for o in (out, tmp_path / "again"))
    assert second["mape_mean"] == first["mape_mean"] and second["r2"] == first["r2"]

    changed = [*SMALL[:-4], "--epochs", "3", "--batch-size", "4"]
    run_cli("train", "--data", forty_houses, "--out", tmp_path / "changed", "--cache", cache, "--strategy", "mixed",
            *changed)
    after = _train_entries(cache)
    # The new model and its range's two calibration folds; the old entries untouched.
    assert len(after) == 6 and {k: after[k] for k in before} == before
    assert json.loads((tmp_path / "changed" / "metrics.json").read_text())["epochs"] == 3

    # An ensemble of two: member 1 (seed 42) is the single model trained above, reused; member 2 is new.
    run_cli("train", "--data", forty_houses, "--out", tmp_path / "ensemble", "--cache", cache, "--strategy",
            "mixed", "--ensemble", "2", *SMALL)
    ensemble = _train_entries(cache)
    # The second member and the ensemble, on all the train houses and on each calibration fold's (member 1 of a
    # fold is the cross-validation fold's model above, reused).
    assert len(ensemble) == 12 and {k: ensemble[k] for k in before} == before
    model = keras.models.load_model(tmp_path / "ensemble" / "model" / "model.keras", safe_mode=True)
    assert model.name == "ensemble_of_2" and model.get_layer("member_0").count_params() * 2 == model.count_params()


def test_predict_prices_a_new_house_and_refuses_unknown_zip(trained, run_cli, forty_houses, tmp_path):
    """The exact prices are checked against the model's own predict in tests/price/test_predict.py."""
    out, _, _ = trained
    photos = tmp_path / "photos"
    photos.mkdir()
    for kind in ("bathroom", "bedroom", "frontal", "kitchen"):
        shutil.copyfile(forty_houses / f"3_{kind}.jpg", photos / f"77_{kind}.jpg")
    houses = tmp_path / "new.csv"
    houses.write_text("house,bedrooms,bathrooms,area,zipcode\n77,3,2,1800,90001\n")
    result = run_cli("predict", "--model", out / "model", "--house", houses, "--photos", photos)
    printed = [line for line in result.stdout.splitlines() if line.strip().startswith("77")]
    assert len(printed) == 1
    price = float(printed[0].split("$")[1].split()[0].replace(",", ""))
    assert price > 0  # a NaN or negative price fails here
    houses.write_text("house,bedrooms,bathrooms,area,zipcode\n77,3,2,1800,12345\n")
    refused = run_cli("predict", "--model", out / "model", "--house", houses, "--photos", photos, check=False)
    assert refused.returncode == 2 and "zip code(s) [12345] were not seen in training" in refused.stderr
    (photos / "77_kitchen.jpg").unlink()
    houses.write_text("house,bedrooms,bathrooms,area,zipcode\n77,3,2,1800,90001\n")
    missing = run_cli("predict", "--model", out / "model", "--house", houses, "--photos", photos, check=False)
    assert missing.returncode == 2 and "77_kitchen.jpg" in missing.stderr


def test_compare_trains_in_parallel_and_writes_a_leaderboard(trained, run_cli, prefect_api, forty_houses, tmp_path):
    _, cache, _ = trained
    out = tmp_path / "cmp"
    since = datetime.now(UTC)
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"  # MLflow's local SQLite store
    result = run_cli("compare", "--data", forty_houses, "--out", out, "--cache", cache, "--tracking", "required",
                     "--tracking-uri", store, "--strategies", "mlp,cnn", "--trainers", "fit,batch", "--max-parallel",
                     "2", "--ensemble", "1", *SMALL)  # one model each: this is about the leaderboard, not ensembles
    assert "Leaderboard:" in result.stdout
    lines = (out / "leaderboard.csv").read_text().splitlines()
    assert lines[0].startswith("rank,name,strategy,trainer,mape_mean")
    assert len(lines) == 6  # four configurations and the tree baseline
    gbm = [line.split(",") for line in lines[1:] if ",gbm," in line]
    assert len(gbm) == 1 and gbm[0][1] == "gbm (tree baseline)" and float(gbm[0][4]) > 0
    assert "gbm (tree baseline): test MAPE" in result.stdout
    assert {p.name for p in out.iterdir()} >= {"leaderboard.md", "leaderboard.png", "mlp-fit", "cnn-batch"}
    assert_plot(out / "leaderboard.png")
    trainings = task_runs(prefect_api, since, "train-")
    assert len(trainings) == 4 and overlap_seconds(trainings) > 0.5  # two at a time, not one after another

    from mlflow import MlflowClient  # one MLflow run per configuration, tied to the Prefect flow run

    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("house-prices-compare").experiment_id])
    assert sorted((r.data.params["strategy"], r.data.params["trainer"]) for r in runs) == [
        ("cnn", "batch"), ("cnn", "fit"), ("mlp", "batch"), ("mlp", "fit")]
    assert {r.data.tags["compare"] for r in runs} == {"cmp"} and all(r.data.metrics["mape_mean"] > 0 for r in runs)
    flow_run = client_call(prefect_api, lambda c: c.read_flow_run(runs[0].data.tags["prefect.flow_run_id"]))
    assert flow_run.name.startswith("compare-")


def test_trainings_in_a_thread_pool_stop_at_their_time_limit_and_resume(run_cli, prefect_api, forty_houses,
                                                                         tmp_path):
    """Prefect cannot interrupt a task in a worker thread; the deadline inside the training loop can."""
    args = ("compare", "--data", forty_houses, "--out", tmp_path / "cmp", "--cache", tmp_path / "cache",
            "--strategies", "mlp", "--trainers", "fit,batch", "--max-parallel", "2", "--min-houses-per-zip", "3",
            "--tile-size", "8", "--batch-size", "4", "--epochs", "100000", "--time-limit", "5")
    since = datetime.now(UTC)
    stopped = run_cli(*args, check=False)
    assert stopped.returncode == 1, stopped.stderr[-2000:]
    errors = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the time limit of 5 s (--time-limit) was reached after epoch" in errors[0]
    assert "Traceback" not in stopped.stderr
    timed_out = task_runs(prefect_api, since, "train-", state="TimedOut")
    assert len(timed_out) == 2 and all("time limit of 5 s" in run.state.message for run in timed_out)
    assert all((run.end_time - run.start_time).total_seconds() < 60 for run in timed_out)

    # The range's calibration trainings share the two training slots, so some of them may have started and been
    # stopped too: every stopped training resumes from its last finished epoch.
    stopped_runs = [run for run in task_runs(prefect_api, since, "", state="TimedOut") if "training" in run.tags]
    again = run_cli(*args, check=False)
    assert again.stdout.count("Resuming from the checkpoint after epoch") + again.stderr.count(
        "Resuming from the checkpoint after epoch") == len(stopped_runs) >= 2


def test_compare_refuses_an_empty_list_before_any_work(run_cli, forty_houses, tmp_path):
    result = run_cli("compare", "--data", forty_houses, "--out", tmp_path / "cmp", "--cache", tmp_path / "cache",
                     "--strategies", ",", check=False)
    assert result.returncode == 2 and "strategies" in result.stderr
    assert not (tmp_path / "cache").exists()
