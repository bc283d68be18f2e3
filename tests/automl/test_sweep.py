"""AutoML sweeps: budgets, real (tiny) AutoKeras searches per task, the wall-clock limit, resume
after a kill, caching, the sweep flow on a real Prefect API and on a real Dask LocalCluster."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tasks.automl.options import Budget, SearchSpace, parse_budgets
from tasks.core.errors import DataError
from tests.conftest import ROOT
from tests.fixtures import assert_plot, make_houses, overlap_seconds, read_artifact, run_stages, task_runs, write_photo

LOG = logging.getLogger("test-sweep")
TINY = ("--min-houses-per-zip", "3", "--tile-size", "8")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """40 houses in 3 zip codes, 16 x 16 montages: (data folder, Dataset)."""
    folder = tmp_path_factory.mktemp("sweep")
    data = make_houses(folder / "houses", [90000 + n % 3 for n in range(40)], photo_size=(24, 20))
    _, dataset = run_stages(data, folder / "cache", tile_size=8)
    return data, dataset


def shapes_folder(root: Path) -> Path:
    """A generated image-folder dataset: two classes of coloured shapes, 8 images each."""
    import cv2

    for label, color in (("red_square", (0, 0, 255)), ("blue_circle", (255, 0, 0))):
        (root / label).mkdir(parents=True)
        for i in range(8):
            image = np.full((20, 20, 3), 255, np.uint8)
            if label == "red_square":
                cv2.rectangle(image, (3 + i % 3, 3), (15, 15 - i % 2), color, -1)
            else:
                cv2.circle(image, (10, 10), 5 + i % 3, color, -1)
            cv2.imwrite(str(root / label / f"{i}.png"), image)
    return root


def test_budgets_from_strings_and_files(tmp_path):
    assert parse_budgets(["60s", "5m:4x20", "1.5h"], 3, 10) == [
        Budget(seconds=60, max_trials=3, epochs=10), Budget(seconds=300, max_trials=4, epochs=20),
        Budget(seconds=5400, max_trials=3, epochs=10)]
    assert parse_budgets(["60s", "60"], 3, 10) == [Budget(seconds=60, max_trials=3, epochs=10)]  # no repeats
    (tmp_path / "b.json").write_text(json.dumps(["30s", {"seconds": 90, "max_trials": 2}]))
    (tmp_path / "b.yaml").write_text("- 2m:1x5\n- {seconds: 10, epochs: 3}\n")
    assert [b.name for b in parse_budgets([str(tmp_path / "b.json"), str(tmp_path / "b.yaml")], 3, 10)] == [
        "30s-3x10", "90s-2x10", "120s-1x5", "10s-3x3"]
    for bad, expected in (("0s", "above zero"), ("ten minutes", "not understood"), ("10s:0x5", "above zero")):
        with pytest.raises(DataError, match=expected):
            parse_budgets([bad], 3, 10)
    (tmp_path / "bad.yaml").write_text("- {seconds: -5}\n")
    with pytest.raises(DataError, match="bad.yaml.*budget #1"):
        parse_budgets([str(tmp_path / "bad.yaml")], 3, 10)


def test_image_folder_without_class_sub_folders_is_refused(tmp_path):
    from tasks.automl.data import scan_image_folder

    (tmp_path / "flat").mkdir()
    write_photo(tmp_path / "flat" / "a.jpg", (0, 0, 255))
    with pytest.raises(DataError, match="no labels.*sub-folder"):
        scan_image_folder(tmp_path / "flat")
    assert len(scan_image_folder(shapes_folder(tmp_path / "shapes"))) == 16


def test_room_tiles_cut_montages_back_into_labelled_photos():
    from tasks.automl.data import room_tiles
    from tasks.houses.ingest import PHOTO_KINDS
    from tasks.houses.montage import tile_montage

    tiles = [np.full((4, 4, 3), 10 * (i + 1), np.uint8) for i in range(4)]
    photos, rooms = room_tiles(np.stack([tile_montage(tiles, 4)] * 2).astype(np.float32))
    assert photos.shape == (8, 4, 4, 3) and rooms.tolist() == [0, 1, 2, 3] * 2
    for photo, room in zip(photos, rooms):
        assert photo[0, 0, 0] == 10 * (room + 1), PHOTO_KINDS[room]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["attributes", "photos", "mixed", "classify", "classify-folder"])
def test_each_task_runs_a_real_search_scores_it_and_exports_a_safe_model(task, tiny, tmp_path):
    from tasks.automl import search as automl
    from tasks.automl.point import PointData, load_task_data, search_point

    _, dataset = tiny
    folder = shapes_folder(tmp_path / "shapes") if task == "classify-folder" else None
    name = task.removesuffix("-folder")
    data = PointData(dataset, folder, 0.25)
    budget = Budget(seconds=120, max_trials=1, epochs=2)
    space = SearchSpace(seed=1, validation_fraction=0.2, hand_built_seed=False)  # AutoKeras's own model exported
    entry, result, reused = search_point(tmp_path / "cache", data, name, budget, space, LOG)
    assert not reused and result["trials_run"] == 1 and not result["stopped_by_deadline"]
    model = automl.load_model(entry / "best.keras")  # safe mode
    test_data = load_task_data(data, name, space)
    predicted = automl.predict(model, test_data.x_test)  # the exported model's own answers on the test set
    assert predicted.shape[0] == result["n_test"] == len(test_data.y_test)
    if name == "classify":
        classes = ["blue_circle", "red_square"] if folder else ["bathroom", "bedroom", "frontal", "kitchen"]
        assert result["metrics"]["classes"] == classes
        confusion = np.array(result["metrics"]["confusion"])
        assert confusion.sum() == result["n_test"]
        assert result["metrics"]["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
        assert result["metrics"]["accuracy"] == pytest.approx(np.mean(predicted.argmax(axis=1) == test_data.y_test))
        assert set(classes) <= set(result["metrics"]["report"])
        assert_plot(entry / "confusion.png")
        assert "precision" in (entry / "classification_report.txt").read_text()
    else:
        assert set(result["metrics"]) >= {"mape_mean", "mape_median", "mae", "rmse", "r2"}
        assert result["n_test"] == dataset.n_test
        target = result["target"]
        prices = np.exp(predicted.reshape(-1) * target["log_std"] + target["log_mean"])
        mape = 100 * np.mean(np.abs(prices - test_data.y_test) / test_data.y_test)  # computed here, not by the code
        assert result["metrics"]["mape_mean"] == pytest.approx(mape, rel=1e-4)
        assert_plot(entry / "predicted_vs_actual.png")
    trials = list(csv.DictReader((entry / "trials.csv").open()))
    assert len(trials) == 1 and trials[0]["status"] == "COMPLETED"
    assert not (tmp_path / "cache" / "automl-work").exists() or not any((tmp_path / "cache" / "automl-work").iterdir())
    again = search_point(tmp_path / "cache", data, name, budget, space, LOG)
    assert again[2] and again[1] == result


@pytest.mark.slow
def test_a_search_starts_from_the_hand_built_model_and_keeps_it_unless_autokeras_beats_it(tiny, tmp_path):
    from tasks.automl import search as automl
    from tasks.automl.point import PointData, load_task_data, search_point
    from tasks.price.data import TargetScale
    from tasks.price.options import PriceOptions
    from tasks.price.train import predict_prices, train_model

    _, dataset = tiny
    data, space = PointData(dataset), SearchSpace(seed=3, validation_fraction=0.2)
    entry, result, _ = search_point(tmp_path / "cache", data, "attributes", Budget(seconds=300, max_trials=1, epochs=1),
                                    space, LOG)
    trials = list(csv.DictReader((entry / "trials.csv").open()))
    assert [t["trial"] for t in trials][0] == "hand-built" and len(trials) == 2 and result["trials_run"] == 1
    # The seed's validation loss, computed here: the same recipe trained again on the same fit houses.
    task_data = load_task_data(data, "attributes", space)
    options = PriceOptions(strategy="mlp", seed=3)
    trained = train_model(dataset.train_path, dataset.encoders(), options, tmp_path / "again", rows=task_data.fit_rows)
    scale = TargetScale(options.target, dataset.encoders()["price_max"])
    model = automl.load_model(trained.model_path)
    _, prices = predict_prices(model, dataset.train_path, "mlp", scale, task_data.val_rows)
    val_loss = np.mean(((np.log(prices) - task_data.log_mean) / task_data.log_std - task_data.y_val) ** 2)
    assert float(trials[0]["val_loss"]) == pytest.approx(val_loss, rel=1e-4)
    searched = float(trials[1]["val_loss"])
    assert result["best"] == ("hand-built mlp" if val_loss <= searched else "autokeras")
    if result["best"] == "hand-built mlp":  # one AutoKeras epoch against 200 of the recipe: the usual outcome
        best = automl.load_model(entry / "best.keras")  # safe mode; the hand-built model's own inputs
        _, test_prices = predict_prices(best, dataset.test_path, "mlp", scale)
        mape = 100 * np.mean(np.abs(test_prices - task_data.y_test) / task_data.y_test)
        assert result["metrics"]["mape_mean"] == pytest.approx(mape, rel=1e-4)
    from tasks.automl.report import point_markdown

    page = point_markdown(result, (entry / "trials.csv").read_text())
    assert f"kept: {result['best']}" in page and "| hand-built |" in page


@pytest.mark.slow
def test_the_wall_clock_limit_stops_the_search_and_keeps_the_best_so_far(tiny, tmp_path):
    from tasks.automl.point import PointData, search_point

    _, dataset = tiny
    budget = Budget(seconds=10, max_trials=50, epochs=100_000)
    started = time.perf_counter()
    entry, result, _ = search_point(tmp_path / "cache", PointData(dataset), "attributes", budget,
                                    SearchSpace(patience=100_000), LOG)
    elapsed = time.perf_counter() - started
    assert result["stopped_by_deadline"] and result["trials_run"] < 50
    # stopped, not run to 50 x 100,000 epochs (hours); the slack is for a loaded machine, which ends the epoch
    # under way late (34 s for this 10 s budget once, with 2 cores shared by four heavy processes)
    assert result["seconds"] < budget.seconds + 50 and elapsed < 120
    assert (entry / "best.keras").stat().st_size > 0


CHILD = """
import logging, sys
from pathlib import Path
from tasks.houses.dataset import Dataset
from tasks.automl.options import Budget, SearchSpace
from tasks.automl.point import PointData, search_point
folder, cache = Path(sys.argv[1]), Path(sys.argv[2])
dataset = Dataset(folder, 8, int(sys.argv[3]), int(sys.argv[4]), [], False)
search_point(cache, PointData(dataset), "attributes", Budget(seconds=600, max_trials=3, epochs=150),
             SearchSpace(patience=1000, hand_built_seed=False), logging.getLogger("child"))
"""


@pytest.mark.slow
def test_a_killed_search_resumes_from_its_finished_trials(tiny, tmp_path):
    from tasks.automl.point import PointData, search_point

    _, dataset = tiny
    cache = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", CHILD, dataset.folder, cache, str(dataset.n_train),
                              str(dataset.n_test)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and child.poll() is None:
            done = [p for p in cache.glob("automl-work/*/project/trial_*/trial.json")
                    if json.loads(p.read_text()).get("status") == "COMPLETED"]
            if done:
                break
            time.sleep(0.2)
        assert child.poll() is None, "the search ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        child.kill()
    assert not (cache / "automl").exists() or not [p for p in (cache / "automl").iterdir() if p.is_dir()
                                                   and not p.name.startswith(".")]  # nothing half-written
    budget = Budget(seconds=600, max_trials=3, epochs=150)
    _, result, reused = search_point(cache, PointData(dataset), "attributes", budget,
                                     SearchSpace(patience=1000, hand_built_seed=False), LOG)
    assert not reused and result["resumed_trials"] >= 1 and result["trials_run"] == 3


@pytest.mark.slow
def test_sweep_flow_writes_a_leaderboard_and_computes_only_new_points(run_cli, prefect_api, tiny, tmp_path):
    data, _ = tiny
    out, cache = tmp_path / "sweep", tmp_path / "cache"
    run_cli("sweep", "--data", data, "--out", out, "--cache", cache, "--tasks", "attributes,classify",
            "--budgets", "60s:1x2", *TINY)
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert {(r["task"], r["kind"], r["budget"]) for r in rows} == {
        ("attributes", "automl", "60s-1x2"), ("classify", "automl", "60s-1x2"), ("attributes", "hand-built", "mlp")}
    assert {p.name for p in (out / "points").iterdir()} == {"attributes-60s-1x2", "classify-60s-1x2"}
    assert (out / "leaderboard.png").stat().st_size > 0 and (out / "hand-built" / "mlp" / "metrics.json").is_file()
    assert "## attributes" in read_artifact(prefect_api, "sweep-leaderboard").data
    assert "AutoML classify" in read_artifact(prefect_api, "automl-classify-60s-1x2").data
    assert read_artifact(prefect_api, "sweep-progress").data == 100.0

    result = run_cli("sweep", "--data", data, "--out", out, "--cache", cache, "--tasks", "attributes",
                     "--budgets", "60s:1x2,50s:1x2", "--no-hand-built", *TINY)
    rows = {r["budget"]: r for r in csv.DictReader((out / "leaderboard.csv").open())}
    assert rows["60s-1x2"]["reused"] == "True" and rows["50s-1x2"]["reused"] == "False"
    assert "Leaderboard:" in result.stdout


def _points_ran_together(prefect_api: str, since, expected: int) -> tuple[float, list]:
    """How long two sweep points ran at the same time, and each point's (name, start, end) for a failure's message."""
    runs = task_runs(prefect_api, since, "search-attributes-")
    assert len(runs) == expected, [r.name for r in runs]
    return overlap_seconds(runs), sorted((r.name, f"{r.start_time:%H:%M:%S.%f}", f"{r.end_time:%H:%M:%S.%f}")
                                         for r in runs)


def _tasks_per_worker(address: str) -> dict:
    """The keys each worker of the scheduler at `address` executed (from its recent transitions)."""
    from distributed import Client

    with Client(address, timeout="10s") as client:
        return client.run(lambda dask_worker: sorted({str(e[0]) for e in dask_worker.state.log
                                                      if len(e) > 2 and e[2] == "executing"}))


@pytest.mark.slow
def test_sweep_runs_points_on_a_local_dask_cluster(run_cli, prefect_api, tiny, tmp_path):
    data, _ = tiny
    out = tmp_path / "sweep"
    since = datetime.now(UTC)
    run_cli("sweep", "--data", data, "--out", out, "--cache", tmp_path / "cache", "--tasks", "attributes",
            "--budgets", "40s:1x2,45s:1x2", "--workers", "2", "--no-hand-built", "--no-hand-built-seed", *TINY)
    assert len(list(csv.DictReader((out / "leaderboard.csv").open()))) == 2
    # Both points reported to this API from the cluster's worker processes, and ran at the same time.
    overlap, spans = _points_ran_together(prefect_api, since, 2)
    assert overlap > 1.0, spans
    assert "AutoML attributes" in read_artifact(prefect_api, "automl-attributes-45s-1x2").data


@pytest.mark.slow
def test_sweep_on_an_existing_dask_scheduler(run_cli, prefect_api, tiny, tmp_path):
    """A real `dask scheduler` started here: refused while it has no workers, then the points run on its two
    worker processes, in parallel, and report to this API."""
    from tasks.core.cluster import check_dask_scheduler

    data, _ = tiny
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    scheduler_file = tmp_path / "scheduler.json"
    logs = (tmp_path / "dask.log").open("w")
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                   "--port", "0", "--no-dashboard", "--scheduler-file", scheduler_file],
                                  cwd=ROOT, env=env, stdout=logs, stderr=logs)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        with pytest.raises(DataError, match="has no workers; start some with `dask worker"):
            check_dask_scheduler(address)
        processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                           "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                          cwd=ROOT, env=env, stdout=logs, stderr=logs))
        deadline = time.monotonic() + 120
        workers = 0
        while workers < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            with contextlib.suppress(DataError):
                workers = check_dask_scheduler(address)
        since = datetime.now(UTC)
        result = run_cli("sweep", "--data", data, "--out", tmp_path / "sweep", "--cache", tmp_path / "cache",
                         "--tasks", "attributes", "--budgets", "40s:2x2,45s:2x2", "--dask-address", address,
                         "--no-hand-built", "--no-hand-built-seed", *TINY)
        assert "Leaderboard:" in result.stdout
        # Each of the two single-thread workers took one point, and the two ran at the same time. (A point is a few
        # seconds here and each worker imports TensorFlow for its first one: on a loaded machine their starts can
        # drift apart by seconds, so the overlap asked is only that they overlapped.)
        overlap, spans = _points_ran_together(prefect_api, since, 2)
        searches = {worker: [key for key in keys if key.startswith("automl_search_task-")]
                    for worker, keys in _tasks_per_worker(address).items()}
        why = "\n".join(map(str, [*spans, searches, (tmp_path / "dask.log").read_text()[-6000:]]))
        assert sorted(map(len, searches.values())) == [1, 1], why
        assert overlap > 0.0, why
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(30)


TWIN = """
import json, logging, sys
from pathlib import Path
from tasks.houses.dataset import Dataset
from tasks.automl.options import Budget, SearchSpace
from tasks.automl.point import PointData, search_point
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
folder, cache = Path(sys.argv[1]), Path(sys.argv[2])
dataset = Dataset(folder, 8, int(sys.argv[3]), int(sys.argv[4]), [], False)
entry, result, reused = search_point(cache, PointData(dataset), "attributes", Budget(seconds=120, max_trials=2,
                                     epochs=40), SearchSpace(seed=3, patience=100, hand_built_seed=False),
                                     logging.getLogger("twin"))
print(json.dumps({"reused": reused, "score": result["metrics"]["mape_mean"], "trials": result["trials_run"]}))
"""


@pytest.mark.slow
def test_two_sweeps_on_one_point_at_once_search_it_once(tiny, tmp_path):
    """Started together on one cache, one run searches and the other waits for it, then reuses its point."""
    _, dataset = tiny
    command = [sys.executable, "-c", TWIN, dataset.folder, tmp_path / "cache", str(dataset.n_train),
               str(dataset.n_test)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    twins = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [twin.communicate(timeout=600) for twin in twins]
    assert all(twin.returncode == 0 for twin in twins), [err[-2000:] for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sorted(r["reused"] for r in results) == [False, True]  # searched once
    assert results[0]["score"] == results[1]["score"] and results[0]["trials"] == results[1]["trials"] == 2
    waited = [err for (_, err), r in zip(outputs, results) if r["reused"]][0]
    assert "Another run is computing AutoML point attributes/120s-2x40; waiting for it to finish" in waited
