"""The model lifecycle against a real `mlflow server` on 127.0.0.1 and the local SQLite store: runs
recorded with their Prefect flow run, the promotion gate (a champion, a worse model that is not
promoted, drift that blocks promotion), promote and rollback, batch scoring, and the REST endpoint
of `mlflow models serve` answering with the same prices as `predict`."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests import servers
from tests.conftest import ROOT
from tests.fixtures import client_call, free_port, http_ok, make_houses, wait_until

pytestmark = pytest.mark.slow  # servers and flows in subprocesses

SMALL = ["--tracking", "required", "--interval-folds", "2", "--min-houses-per-zip", "3", "--tile-size", "8",
         "--batch-size", "4", "--strategy", "mixed"]
ROOMS = ("frontal", "bedroom", "bathroom", "kitchen")


def _mlflow_env(uri: str) -> dict:
    bin_dir = str(Path(sys.executable).parent)  # mlflow serve runs `uvicorn` from the environment's bin
    return {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true",
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` with its own SQLite database and artifact folder; (URI, artifact folder)."""
    server = servers.mlflow_server(tmp_path_factory.mktemp("mlflow-server")).start()
    try:
        yield f"http://127.0.0.1:{server.port}", server.log.parent / "artifacts"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def houses(tmp_path_factory) -> Path:
    return make_houses(tmp_path_factory.mktemp("lifecycle") / "houses", [90000 + n % 3 for n in range(36)],
                       photo_size=(24, 20))


@pytest.fixture(scope="module")
def nightly(run_cli, mlflow_server, houses, tmp_path_factory):
    """Nightly-style runs on one registry: a champion, a candidate worse by construction (one epoch at a learning
    rate of 1e-9: the untrained network), drifted data, and the champion's run again (its training cached: the
    same model)."""
    uri, _ = mlflow_server
    root = tmp_path_factory.mktemp("nightly")
    drifted = shutil.copytree(houses, root / "drifted-houses")
    lines = [line.split() for line in (drifted / "HousesInfo.txt").read_text().splitlines()]
    (drifted / "HousesInfo.txt").write_text("".join(f"{b} {t} {int(a) * 3} {z} {p}\n" for b, t, a, z, p in lines))
    runs = {}
    untrained = ["--epochs", "1", "--learning-rate", "1e-9"]
    for name, data, options in (("champion", houses, ["--epochs", "40"]), ("worse", houses, untrained),
                                ("drifted", drifted, ["--epochs", "40"]), ("again", houses, ["--epochs", "40"])):
        out = root / name
        result = run_cli("train", "--data", data, "--out", out, "--cache", root / "cache", "--tracking-uri", uri,
                         *SMALL, "--learning-rate", "0.01", *options)  # the last --learning-rate given wins
        gate = out / "gate.json"
        runs[name] = (out, result.stdout + result.stderr, json.loads(gate.read_text()) if gate.exists() else None)
    return runs


def test_a_champion_then_a_worse_model_and_drifted_data_are_kept_out(nightly, mlflow_server, run_cli, prefect_api):
    uri, _ = mlflow_server
    (_, first, champion), (worse_out, second, worse), (drift_out, _, drift) = (nightly[k] for k in
                                                                              ("champion", "worse", "drifted"))
    assert champion["promoted"] and champion["version"] == 1 and "promoted to champion" in first
    # The untrained candidate is never promoted, and the reasons name exactly the conditions its figures fail.
    assert not worse["promoted"] and worse["version"] == 2 and worse["champion_before"] == 1
    assert "not promoted (champion stays version 1)" in second
    candidate, old = worse["comparison"]["candidate"], worse["comparison"]["champion"]
    assert candidate["mape_mean"] > old["mape_mean"] and worse["comparison"]["houses"] == 9  # the same test houses
    metrics = json.loads((worse_out / "metrics.json").read_text())
    assert any("worse than the champion's" in r for r in worse["reasons"])
    assert any("naive baseline" in r for r in worse["reasons"]) == (metrics["mape_mean"] >=
                                                                     metrics["baseline"]["mape_mean"])
    assert "| MAPE mean (%) |" in (worse_out / "gate.md").read_text()
    assert not drift["promoted"] and any("area drifted (PSI" in reason for reason in drift["reasons"])
    assert "area" in (drift_out / "data_profile.json").read_text()

    listing = run_cli("models", "registry", "list", "--tracking-uri", uri).stdout.splitlines()
    assert [line.split()[:2] for line in listing] == [["3", "mixed"], ["2", "mixed"], ["1", "champion"]]
    assert "Registry: unchanged, the same model as version 1" in nightly["again"][1]  # not a 4th version

    from mlflow import MlflowClient

    client = MlflowClient(uri)
    version = client.get_model_version("house-price", "2")
    assert version.tags["gate"] == "rejected" and version.tags["strategy"] == "mixed"
    run = client.get_run(version.run_id)
    assert run.data.metrics["mape_mean"] == pytest.approx(worse["comparison"]["candidate"]["mape_mean"], abs=1e-3)
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 1  # one epoch, per-epoch metrics
    flow_run = client_call(prefect_api, lambda c: c.read_flow_run(run.data.tags["prefect.flow_run_id"]))
    assert flow_run.name.startswith("train-mixed-") and "NOT promoted" in flow_run.state.message

    query = {"filter": {"event": {"name": ["house-pipeline.model.not-promoted"]}}, "limit": 50}
    request = urllib.request.Request(f"{prefect_api}/events/filter", json.dumps(query).encode(),
                                     {"Content-Type": "application/json"})
    events = json.loads(urllib.request.urlopen(request, timeout=30).read())["events"]
    runs = {v: client.get_run(client.get_model_version("house-price", v).run_id) for v in ("2", "3")}
    rejected = {f"prefect.flow-run.{run.data.tags['prefect.flow_run_id']}": v for v, run in runs.items()}
    emitted = {r["prefect.resource.id"]: e["payload"]["version"] for e in events for r in e["related"]
               if r["prefect.resource.id"] in rejected}
    assert emitted == {key: int(v) for key, v in rejected.items()}  # one event per rejected model, for the alerts
    assert {"report.md", "plots"} <= {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "report")}


def test_promote_and_rollback_and_a_version_whose_files_are_gone_is_never_served(nightly, mlflow_server, run_cli):
    uri, artifacts = mlflow_server
    assert "Version 2 is now the champion" in run_cli("models", "registry", "promote", "2", "--tracking-uri",
                                                      uri).stdout
    assert "version 1 is the champion again" in run_cli("models", "registry", "rollback", "--tracking-uri",
                                                        uri).stdout
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    assert client.get_model_version_by_alias("house-price", "champion").version == "1"
    gone = client.get_model_version("house-price", "3")
    shutil.rmtree(artifacts / client.get_run(gone.run_id).info.experiment_id / gone.run_id / "artifacts" / "model")
    refused = run_cli("models", "registry", "promote", "3", "--tracking-uri", uri, check=False)
    assert refused.returncode == 2 and "it is not served" in refused.stderr and "Traceback" not in refused.stderr
    assert client.get_model_version_by_alias("house-price", "champion").version == "1"


def test_batch_scoring_and_the_rest_endpoint_give_the_prices_of_predict(nightly, mlflow_server, run_cli, houses,
                                                                         tmp_path):
    uri, _ = mlflow_server
    new = tmp_path / "new.csv"
    new.write_text("house,bedrooms,bathrooms,area,zipcode\n1,3,2,1800,90001\n2,4,3,2600,90002\n")
    scored = run_cli("score", "--houses", new, "--photos", houses, "--out", tmp_path / "scored", "--cache",
                     tmp_path / "cache", "--tracking", "required", "--tracking-uri", uri)
    assert "Priced 2 houses with house-price version 1" in scored.stdout
    table = pd.read_parquet(tmp_path / "scored" / "predictions.parquet")
    assert table["model_version"].tolist() == [1, 1]
    predicted = run_cli("predict", "--model", nightly["champion"][0] / "model", "--house", new, "--photos", houses)
    printed = [line.split() for line in predicted.stdout.split("\n\n")[0].splitlines()[1:3]]
    expected = [float(words[-3].strip("$").replace(",", "")) for words in printed]  # predicted_price, low, high
    assert table["predicted_price"].tolist() == expected
    assert table["price_high"].tolist() == [float(words[-1].strip("$").replace(",", "")) for words in printed]
    explained = run_cli("score", "--houses", new, "--photos", houses, "--out", tmp_path / "explained", "--cache",
                        tmp_path / "cache", "--tracking", "required", "--tracking-uri", uri, "--explain")
    assert "Priced 2 houses" in explained.stdout
    effects = pd.read_parquet(tmp_path / "explained" / "predictions.parquet").filter(like="effect_")
    assert effects.shape == (2, 8)

    port = free_port()
    log = tmp_path / "serve.log"
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                               "models:/house-price@champion", "--env-manager", "local", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=ROOT, env=_mlflow_env(uri), stdout=log.open("w"),
                              stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/ping"), 120, f"mlflow models serve (log: {log})")
        photos = {f"photo_{room}": "data:image/jpeg;base64," + base64.b64encode(
            (houses / f"1_{room}.jpg").read_bytes()).decode() for room in ROOMS}
        body = {"dataframe_records": [{"bedrooms": 3, "bathrooms": 2, "area": 1800, "zipcode": 90001, **photos}]}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            [found] = json.loads(answer.read())["predictions"]
        assert found["predicted_price"] == expected[0] and found["price_low"] < expected[0] < found["price_high"]
        asked = {**body, "params": {"explain": True, "interval_level": 0.5}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", json.dumps(asked).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as answer:
            [found_explained] = json.loads(answer.read())["predictions"]
        assert found_explained["price_high"] < found["price_high"]  # a 50 % range is narrower
        effects = [v for k, v in found_explained.items() if k.startswith("effect_")]
        assert len(effects) == 8 and sum(effects) == pytest.approx(expected[0] - found_explained["base_price"], abs=9)
    finally:
        server.terminate()
        server.wait(30)


def test_tracking_optional_goes_on_and_its_record_waits_when_the_server_is_unreachable():
    from tasks.lifecycle.tracking import Tracking

    said = []
    tracker = Tracking.resolve("optional", f"http://127.0.0.1:{free_port()}", warn=said.append)
    assert tracker.enabled and not tracker.available
    assert "cannot reach the MLflow tracking server" in said[0] and "waits in the outbox" in said[0]
