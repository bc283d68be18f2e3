"""Fault injection: a byte of each kind of cached file is damaged in place (size unchanged); the next run
notices, says so in the log, rebuilds, and produces the same outputs as a clean run."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tasks.core.cache import Cache
from tasks.houses.dataset import build_dataset
from tasks.houses.encoders import filter_zipcodes
from tasks.houses.ingest import ingest_houses
from tasks.houses.montages import build_montages
from tasks.price.data import TargetScale
from tasks.price.options import PriceOptions
from tasks.price.train import predict_prices, train_model
from tasks.training.engine import CHECKPOINT
from tasks.training.progress import reuse_or_train
from tasks.training.saved_models import load_keras_model
from tests.fixtures import make_houses

LOG = logging.getLogger("tests.damaged")
OPTIONS = PriceOptions(strategy="mixed", epochs=4, batch_size=4)


def flip_a_byte(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    path.write_bytes(bytes(data))


def pipeline(data: Path, cache_dir: Path) -> dict:
    """Preprocess and train (reusing what the cache holds), then the test predictions: the outputs to compare."""
    cache = Cache(cache_dir, LOG)
    ingested = ingest_houses(data)
    kept = filter_zipcodes(ingested.houses, 3)
    montages = build_montages(cache, data, kept, 8, log=LOG)
    dataset = build_dataset(cache, kept, montages, 0.25, 42)
    folder = cache_dir / "train" / "mixed"
    reuse_or_train(folder, "model", lambda: train_model(dataset.train_path, dataset.encoders(), OPTIONS, folder,
                                                         LOG), LOG)
    model = load_keras_model(folder / "model.keras")
    scale = TargetScale(OPTIONS.target, dataset.encoders()["price_max"])
    return {"predicted": predict_prices(model, dataset.test_path, "mixed", scale)[1],
            "train.parquet": dataset.train_path.read_bytes(), "encoders": dataset.encoders_path.read_text(),
            "shards": [shard.read_bytes() for shard in montages.shards], "dataset": dataset.folder}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The houses, a filled cache, and the outputs of a clean run."""
    folder = tmp_path_factory.mktemp("damage")
    data = make_houses(folder / "houses", [90000 + n % 3 for n in range(24)], photo_size=(24, 20))
    return data, folder / "cache", pipeline(data, folder / "cache")


def _same_outputs(run: dict, clean_run: dict) -> None:
    np.testing.assert_array_equal(run["predicted"], clean_run["predicted"])
    for name in ("train.parquet", "encoders", "shards"):
        assert run[name] == clean_run[name], name


DAMAGES = {  # what is damaged -> where it lies in a filled cache
    "montage shard (Parquet)": lambda cache, out: next((cache / "montages").glob("*/montages.parquet")),
    "dataset split (Parquet)": lambda cache, out: out["dataset"] / "train.parquet",
    "encoders (JSON)": lambda cache, out: out["dataset"] / "encoders.json",
    "trained model (.keras)": lambda cache, out: cache / "train" / "mixed" / "model.keras",
    "training record (JSON)": lambda cache, out: cache / "train" / "mixed" / "done.json",
}


@pytest.mark.parametrize("what", list(DAMAGES))
def test_a_damaged_cache_file_is_noticed_rebuilt_and_gives_the_clean_outputs(clean, tmp_path, caplog, what):
    data, filled, clean_run = clean
    cache = tmp_path / "cache"
    shutil.copytree(filled, cache)
    target = DAMAGES[what](cache, {"dataset": cache / clean_run["dataset"].relative_to(filled)})
    size = target.stat().st_size
    flip_a_byte(target, 0.5 if target.suffix != ".json" else 0.9)
    assert target.stat().st_size == size
    with caplog.at_level(logging.INFO):
        run = pipeline(data, cache)
    assert "is damaged" in caplog.text, caplog.text
    _same_outputs(run, clean_run)
    again = pipeline(data, cache)  # rebuilt and verified: the next run reuses it quietly
    _same_outputs(again, clean_run)


@pytest.mark.slow
def test_a_damaged_checkpoint_restarts_the_training_and_gives_the_clean_model(clean, tmp_path, caplog, monkeypatch):
    data, filled, clean_run = clean
    cache = tmp_path / "cache"
    shutil.copytree(filled, cache, ignore=shutil.ignore_patterns("train"))

    class Killed(BaseException):
        pass

    real_replace, renames = os.replace, []

    def replace(src, dst):  # kill the training at its third checkpoint
        renames.append(dst)
        if str(dst).endswith(CHECKPOINT) and sum(str(d).endswith(CHECKPOINT) for d in renames) == 3:
            raise Killed()
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        pipeline(data, cache)
    monkeypatch.undo()
    flip_a_byte(cache / "train" / "mixed" / CHECKPOINT)
    with caplog.at_level(logging.INFO):
        run = pipeline(data, cache)
    assert "The checkpoint is damaged" in caplog.text and "starts over" in caplog.text
    _same_outputs(run, clean_run)


def test_a_damaged_dnn_output_is_redone_identically(tmp_path, caplog):
    from tasks.core.hashing import digest
    from tasks.dnn.batch import DnnJob, process_image
    from tasks.dnn.toy_networks import sepia_net
    from tests.dnn.fixtures import write_images

    images = write_images(tmp_path / "in", 1)
    model = sepia_net(tmp_path / "sepia.onnx")
    job = DnnJob("stylize", model, digest(model.read_bytes().hex()), {"width": 64, "mean": [0, 0, 0],
                                                                      "swap_rb": False},
                 cache_dir=tmp_path / "cache", out=tmp_path / "out")
    first = process_image(job, images[0], images[0].name)
    clean_output = (tmp_path / "out" / images[0].name).read_bytes()
    entry_output = next((tmp_path / "cache" / "stylize").glob(f"*/output{images[0].suffix}"))
    flip_a_byte(entry_output)
    with caplog.at_level(logging.WARNING):
        again = process_image(job, images[0], images[0].name)
    assert first["status"] == "done" and again["status"] == "done"  # redone, not reused
    assert "is damaged" in caplog.text
    assert (tmp_path / "out" / images[0].name).read_bytes() == clean_output
