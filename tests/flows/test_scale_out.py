"""Preprocessing on a local Dask cluster of two worker processes (Prefect tasks for batches of montage shards
and of perceptual hashes) builds the same cache, byte for byte, as a run in one process: the shards, the photos'
hashes and the dataset's split files."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fixtures import make_houses

pytestmark = pytest.mark.slow  # two flows in subprocesses, one of them with a Dask cluster


def _files(cache: Path, stage: str) -> dict[str, str]:
    return {str(p.relative_to(cache / stage)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((cache / stage).rglob("*")) if p.is_file()}


def test_shards_built_on_two_dask_workers_equal_those_built_in_one_process(tmp_path: Path):
    houses = make_houses(tmp_path / "houses", [90000 + n % 3 for n in range(200)], photo_size=(24, 20))
    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "HOUSE_PIPELINE_TRACKING": "off",
           "PREFECT_HOME": str(tmp_path / "prefect"), "HOUSE_PIPELINE_HOME": str(tmp_path / "home")}
    outputs = {}
    for name, extra in (("local", []), ("cluster", ["--workers", "2"])):
        done = subprocess.run([sys.executable, "-m", "flows", "preprocess", "--data", str(houses), "--tile-size",
                               "8", "--min-houses-per-zip", "3", "--cache", str(tmp_path / name), "--out",
                               str(tmp_path / f"out-{name}"), *extra], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        outputs[name] = done.stdout + done.stderr
    shards = _files(tmp_path / "local", "montages")
    assert len([f for f in shards if f.endswith(".parquet")]) == 4  # 200 houses, 64 a shard
    assert _files(tmp_path / "cluster", "montages") == shards
    assert _files(tmp_path / "cluster", "dataset") == _files(tmp_path / "local", "dataset")
    assert _files(tmp_path / "cluster", "photo-hashes") == _files(tmp_path / "local", "photo-hashes")
    for subflow in ("montage-shards", "photo-hashes"):  # both ran on the cluster, as mapped tasks
        assert f"{subflow}-1" in outputs["cluster"] and subflow not in outputs["local"]
