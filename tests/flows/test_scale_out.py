"""Preprocessing on a local Dask cluster of two worker processes (Prefect tasks for batches of photos to check and
hash, of perceptual hashes and of montage shards) builds the same cache, byte for byte, as a run in one process:
the manifest of every input's sha256, the shards, the photos' hashes and the dataset's split files; and the
classifier's labelled images decoded there, the same file."""

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


def _run_twice(tmp_path: Path, command: list[str], extra_cluster: list[str]) -> dict[str, str]:
    """`python -m flows COMMAND` in one process (cache tmp_path/local) and on 2 Dask workers (tmp_path/cluster):
    the output of each."""
    env = {**{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}, "HOUSE_PIPELINE_TRACKING": "off",
           "PREFECT_HOME": str(tmp_path / "prefect"), "HOUSE_PIPELINE_HOME": str(tmp_path / "home")}
    outputs = {}
    for name, extra in (("local", []), ("cluster", extra_cluster)):
        done = subprocess.run([sys.executable, "-m", "flows", *command, "--cache", str(tmp_path / name), "--out",
                               str(tmp_path / f"out-{name}"), *extra], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        outputs[name] = done.stdout + done.stderr
    return outputs


def test_shards_built_on_two_dask_workers_equal_those_built_in_one_process(tmp_path: Path):
    houses = make_houses(tmp_path / "houses", [90000 + n % 3 for n in range(200)], photo_size=(24, 20))
    outputs = _run_twice(tmp_path, ["preprocess", "--data", str(houses), "--tile-size", "8", "--min-houses-per-zip",
                                    "3"], ["--workers", "2"])
    shards = _files(tmp_path / "local", "montages")
    assert len([f for f in shards if f.endswith(".parquet")]) == 4  # 200 houses, 64 a shard
    assert _files(tmp_path / "cluster", "montages") == shards
    assert _files(tmp_path / "cluster", "dataset") == _files(tmp_path / "local", "dataset")
    assert _files(tmp_path / "cluster", "photo-hashes") == _files(tmp_path / "local", "photo-hashes")
    # ingest's check and sha256 of every photo, done on the workers: the same manifest, byte for byte
    manifests = [(tmp_path / f"out-{name}" / "manifest.json").read_bytes() for name in ("local", "cluster")]
    assert manifests[0] == manifests[1] and manifests[0].count(b".jpg") == 800
    for subflow in ("montage-shards", "photo-hashes", "inspect-photos"):  # all ran on the cluster, as mapped tasks
        assert f"{subflow}-1" in outputs["cluster"] and subflow not in outputs["local"]


def test_classifier_images_decoded_on_two_dask_workers_equal_those_decoded_in_one_process(tmp_path: Path):
    houses = make_houses(tmp_path / "houses", [90000 + n % 3 for n in range(150)], photo_size=(24, 20))
    outputs = _run_twice(tmp_path, ["classify", "--houses", str(houses), "--image-size", "16", "--epochs", "1"],
                         ["--workers", "2"])
    images = {f: sha for f, sha in _files(tmp_path / "local", "labelled-images").items() if f.endswith(".parquet")}
    assert len(images) == 1  # one entry, the same key and bytes on the cluster (summary.json names the run folder)
    assert {f: sha for f, sha in _files(tmp_path / "cluster", "labelled-images").items() if f.endswith(".parquet")} \
        == images
    manifest = (tmp_path / "out-local" / "house-labels.csv").read_text().splitlines()[1:]
    assert len(manifest) == 600 and all(Path(line.split(",")[0]).is_file() for line in manifest)  # in its final place
    assert "decode-images-3" in outputs["cluster"] and "decode-images" not in outputs["local"]  # 600 images: 3 batches
