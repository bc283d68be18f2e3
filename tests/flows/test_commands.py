"""The commands that start no flow, each run as a user would (`main(argv)`) and checked against what it
wrote: `models list|fetch|toy`, `compact-dataset` and `house-labels`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from flows.__main__ import main
from tasks.core.hashing import file_sha256
from tasks.dnn.registry import LOCK_NAME, PUBLISHED
from tasks.houses.ingest import ingest_houses
from tests.fixtures import make_houses


def test_models_list_names_every_published_network_with_its_files(capsys):
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(PUBLISHED)
    for name, model in PUBLISHED.items():
        line = next(line for line in lines if line.split()[0] == name)
        assert model.kind in line and all(file in line for file in model.files)


def test_models_fetch_downloads_from_a_mirror_and_records_the_hashes(http_folder, tmp_path, capsys):
    served, base = http_folder
    (served / "candy.t7").write_bytes(b"a published style network" * 100)
    models = tmp_path / "models"
    assert main(["models", "fetch", "candy", "--dir", str(models), "--base-url", base]) == 0
    assert f"{models / 'candy.t7'}  (sha256 recorded in" in capsys.readouterr().out
    assert (models / "candy.t7").read_bytes() == (served / "candy.t7").read_bytes()
    lock = json.loads((models / LOCK_NAME).read_text())
    assert lock == {"candy.t7": {"url": f"{base}/candy.t7", "sha256": file_sha256(served / "candy.t7")}}


def test_models_toy_writes_a_network_that_opencv_runs(tmp_path, capsys):
    path = tmp_path / "sepia.onnx"
    assert main(["models", "toy", "sepia", str(path)]) == 0
    assert str(path) in capsys.readouterr().out
    net = cv2.dnn.readNet(str(path))
    image = np.random.default_rng(0).random((1, 3, 4, 4)).astype(np.float32)
    net.setInput(image)
    output = net.forward()
    assert output.shape == image.shape and np.all(np.isfinite(output))
    assert not np.allclose(output, image)  # it does something to the pixels


def test_compact_dataset_shrinks_every_photo_and_keeps_the_houses(tmp_path, capsys):
    source = make_houses(tmp_path / "houses", [90000 + n % 3 for n in range(6)], photo_size=(90, 120))
    target = tmp_path / "compact"
    assert main(["compact-dataset", str(source), str(target), "--max-side", "40"]) == 0
    photos = sorted(p.name for p in target.glob("*.jpg"))
    assert photos == sorted(p.name for p in source.glob("*.jpg")) and len(photos) == 24
    for name in photos:
        height, width = cv2.imread(str(target / name)).shape[:2]
        assert (height, width) == (30, 40)  # the long side at 40, the aspect ratio kept
    assert (target / "HousesInfo.txt").read_bytes() == (source / "HousesInfo.txt").read_bytes()
    columns = ["house", "bedrooms", "bathrooms", "area", "zipcode", "price"]
    assert ingest_houses(target).houses[columns].equals(ingest_houses(source).houses[columns])


def test_house_labels_writes_a_manifest_of_every_photo_split_by_house(tmp_path, capsys):
    houses = make_houses(tmp_path / "houses", [90001] * 12)
    out = tmp_path / "labels" / "labels.csv"
    assert main(["house-labels", "--data", str(houses), "--out", str(out), "--test-size", "0.25"]) == 0
    assert f"Wrote 48 labelled photos of 12 houses (9 train, 3 test) to {out}" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 48 and {Path(r["path"]).name for r in rows} == {p.name for p in houses.glob("*.jpg")}
    assert all(Path(r["path"]).name.split("_")[1] == f"{r['room']}.jpg" for r in rows)
    split_of = {}
    for row in rows:
        assert split_of.setdefault(row["group"], row["split"]) == row["split"]  # a house's photos stay together
    assert sorted(split_of.values()).count("test") == 3
