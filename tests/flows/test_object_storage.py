"""The pipeline on object storage, against a real S3 endpoint (moto_server on 127.0.0.1), as a team runs it from
several machines (each a mirror of its own): a train run with its cache and run folder on the bucket re-run
all Cached elsewhere; houses read from the bucket give the same dataset as the local copy; two runs on one
training key (one trains); a worker killed holding a lease (another takes over and resumes); scoring that
reads and writes the bucket with the registry's model files on the bucket too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import s3fs

from tasks.core import storage
from tests import servers
from tests.conftest import ROOT
from tests.fixtures import make_houses, wait_until

pytestmark = pytest.mark.slow  # flows in subprocesses, servers

SMALL = ["--strategy", "mlp", "--interval-folds", "2", "--min-houses-per-zip", "3", "--tile-size", "8",
         "--batch-size", "4", "--tracking", "off"]
EXPENSIVE = ("build-montages", "build-dataset", "train")


@pytest.fixture(scope="module")
def houses(tmp_path_factory) -> Path:
    return make_houses(tmp_path_factory.mktemp("s3") / "houses", [90000 + n % 3 for n in range(36)],
                       photo_size=(24, 20))


@pytest.fixture
def machine(moto, bucket, prefect_api, tmp_path):
    """`machine(name)`: the environment of one machine of the team: the bucket's endpoint and credentials, a
    mirror and a state folder of its own, the session's Prefect API."""
    def env(name: str, **extra: str) -> dict:
        base = {k: v for k, v in os.environ.items() if k != "HOUSE_PIPELINE_MIRROR"}
        return {**base, **servers.s3_env(moto), "PREFECT_API_URL": prefect_api, "HOUSE_PIPELINE_TRACKING": "off",
                "HOUSE_PIPELINE_MIRROR": str(tmp_path / name / "mirror"),
                "HOUSE_PIPELINE_HOME": str(tmp_path / name / "home"), **extra}
    return env


@pytest.fixture
def bucket_fs(moto) -> s3fs.S3FileSystem:
    """The bucket as any machine reads it (no instance cache: every listing is fresh)."""
    return s3fs.S3FileSystem(skip_instance_cache=True, endpoint_url=servers.s3_env(moto)["AWS_ENDPOINT_URL"],
                             key="testing", secret="testing")


def _run(args: list, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "flows", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert not check or done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _start(args: list, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flows", *map(str, args)], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def _states(output: str) -> dict[str, str]:
    """{task name prefix: final state} from a run's log lines."""
    found = {}
    for line in output.splitlines():
        if "Task run '" in line and "Finished in state" in line:
            name = line.split("Task run '")[1].split("'")[0].rsplit("-", 1)[0]
            found[name] = line.split("Finished in state ")[1].split("(")[0]
    return found


def test_a_run_on_the_bucket_is_reused_all_cached_from_another_machine(houses, bucket, bucket_fs, machine):
    args = ["train", "--data", houses, "--cache", f"{bucket}/cache", "--out", f"{bucket}/runs/train", "--epochs",
            "3", *SMALL]
    first = _run(args, machine("a"))
    assert f"Report: {bucket}/runs/train/report.md" in first.stdout
    again = _run(args, machine("b"))  # another machine: an empty mirror
    output = again.stdout + again.stderr
    assert all(_states(output)[name] == "Cached" for name in EXPENSIVE), _states(output)
    assert "Epoch 1/" not in output
    listing = json.loads(bucket_fs.cat_file(f"{bucket}/runs/train/_entry.json"))["files"]
    assert {"report.md", "metrics.json", "model/model.keras", "run.json"} <= set(listing)
    assert json.loads(bucket_fs.cat_file(f"{bucket}/runs/train/metrics.json"))["epochs"] == 3
    assert bucket_fs.exists(f"{bucket}/cache/prefect-results")  # Prefect's records on the bucket: Cached from anywhere
    assert "testing" not in output  # no credential in any log line


def test_houses_read_from_the_bucket_give_the_same_dataset_as_the_local_copy(houses, bucket, bucket_fs,
                                                                             machine, tmp_path):
    env = machine("a")
    bucket_fs.put(str(houses) + "/", f"{bucket}/houses/", recursive=True)
    common = ["--min-houses-per-zip", "3", "--tile-size", "8"]
    _run(["preprocess", "--data", f"{bucket}/houses", "--out", tmp_path / "remote", "--cache", tmp_path / "c1",
          *common], env)
    _run(["preprocess", "--data", houses, "--out", tmp_path / "local", "--cache", tmp_path / "c2", *common], env)
    remote, local = (json.loads((tmp_path / name / "summary.json").read_text()) for name in ("remote", "local"))
    assert remote["dataset"].rsplit("/", 1)[1] == local["dataset"].rsplit("/", 1)[1]  # the same content key
    assert json.loads((tmp_path / "remote" / "manifest.json").read_text()) == \
        json.loads((tmp_path / "local" / "manifest.json").read_text())
    bad = _run(["preprocess", "--data", f"{bucket}/nothing-here", "--out", tmp_path / "x", *common], env, check=False)
    assert bad.returncode == 2 and bad.stderr.strip() == f"error: --data {bucket}/nothing-here: no such folder " \
                                                         "(no objects under this prefix)"


def test_two_machines_on_one_training_key_one_trains_the_other_reuses(houses, bucket, bucket_fs, machine, tmp_path):
    args = ["train", "--data", houses, "--cache", f"{bucket}/cache", "--epochs", "300", *SMALL]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first = _start([*args, "--out", tmp_path / "out-a"], machine("a"), logs[0])
    wait_until(lambda: "Epoch 2/" in logs[0].read_text(), 300, "the first training to start")
    second = _start([*args, "--out", tmp_path / "out-b"], machine("b"), logs[1])
    assert first.wait(600) == 0 and second.wait(600) == 0, logs[1].read_text()[-3000:]
    waited = logs[1].read_text()
    assert "is computing the model" in waited and "waiting for it to finish" in waited
    assert "Reusing the trained model" in waited or "Cached" in _states(waited)["train"]
    assert not [line for line in waited.splitlines() if "Task run 'train-" in line and "Epoch 1/" in line]
    # The range's calibration trainings (other keys) may be shared out between the two machines, but no key is
    # trained twice: one first epoch per model on the bucket, over both machines' logs.
    models = [p for p in bucket_fs.find(f"{bucket}/cache/train") if p.endswith("/model.keras")]
    first_epochs = sum(log.read_text().count("Epoch 1/") for log in logs)
    assert len(models) == 3 and first_epochs == 3  # the model and its two calibration folds
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("out-a", "out-b")]
    assert metrics[0]["mape_mean"] == metrics[1]["mape_mean"]  # the one model


def test_a_worker_killed_holding_the_lease_is_taken_over_after_expiry_and_resumed(houses, bucket, bucket_fs,
                                                                                  machine, tmp_path):
    args = ["train", "--data", houses, "--cache", f"{bucket}/cache", "--epochs", "400", *SMALL]
    fast = {"HOUSE_PIPELINE_LEASE_SECONDS": "6", "HOUSE_PIPELINE_CHECKPOINT_SECONDS": "1"}
    log = tmp_path / "a.log"
    killed = _start([*args, "--out", tmp_path / "out-a"], machine("a", **fast), log)
    env = machine("b", **fast)
    wait_until(lambda: "Epoch 20/" in log.read_text() and bucket_fs.find(f"{bucket}/cache/train"), 300,
               "a checkpoint on the bucket")
    time.sleep(2)
    os.killpg(killed.pid, signal.SIGKILL)  # no goodbye: the lease stays until it expires
    killed.wait()
    taken = time.monotonic()
    result = _run([*args, "--out", tmp_path / "out-b"], env)
    output = result.stdout + result.stderr
    assert "expired (its owner stopped renewing it): this run takes the work over" in output
    resumed = [line for line in output.splitlines() if "Resuming from the checkpoint after epoch" in line]
    assert resumed and int(resumed[0].split("after epoch ")[1].split()[0]) >= 5, output[-3000:]
    assert time.monotonic() - taken > 3  # it waited for the lease to expire
    assert json.loads((tmp_path / "out-b" / "metrics.json").read_text())["epochs"] == 400


def test_scoring_reads_and_writes_the_bucket_with_the_registry_files_on_it(houses, bucket, bucket_fs,
                                                                           machine, moto, tmp_path):
    env = machine("a")
    mlflow = servers.mlflow_server(tmp_path / "mlflow", f"{bucket}/mlflow", servers.s3_env(moto)).start()
    uri = f"http://127.0.0.1:{mlflow.port}"
    try:
        tracked = {**env, "HOUSE_PIPELINE_TRACKING": "required", "MLFLOW_TRACKING_URI": uri}
        _run(["train", "--data", houses, "--cache", f"{bucket}/cache", "--out", f"{bucket}/runs/train", "--epochs",
              "20", *SMALL, "--tracking", "required"], tracked)
        assert [p for p in bucket_fs.find(f"{bucket}/mlflow") if p.endswith("model.keras")]  # the registry files
        bucket_fs.pipe_file(f"{bucket}/in/new.csv", b"house,bedrooms,bathrooms,area,zipcode\n1,3,2,1800,90001\n")
        scored = _run(["score", "--houses", f"{bucket}/in/new.csv", "--out", f"{bucket}/scores", "--cache",
                       f"{bucket}/cache", "--tracking", "required", "--model-version", "1"],
                      {**tracked, "HOUSE_PIPELINE_MIRROR":
                                                                      str(tmp_path / "elsewhere")})
        assert f"Priced 1 houses with house-price version 1: {bucket}/scores/predictions.csv" in scored.stdout
        table = bucket_fs.cat_file(f"{bucket}/scores/predictions.csv").decode().splitlines()
        assert table[0].split(",")[-1] == "model_version" and table[1].endswith(",1")
        assert storage.MANIFEST in [p.rsplit("/", 1)[1] for p in bucket_fs.ls(f"{bucket}/scores")]
    finally:
        mlflow.stop()
