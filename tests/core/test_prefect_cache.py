"""Prefect's cache on the project's content keys: plain-JSON results, hits only on complete entries,
never a record of another serializer, per-run facts not replayed (tasks.core.prefect_cache)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tasks.core.prefect_cache import RESULTS_FOLDER, PlainJSON, cached, with_results_in
from tasks.houses.dataset import Dataset
from tasks.houses.montages import Montages


def test_results_round_trip_as_plain_json_and_come_back_as_reused():
    montages = Montages(32, [Path("/c/montages/k1/montages.parquet")], [{"house": 3, "reason": "bad"}], 2, 1)
    dataset = Dataset(Path("/c/dataset/k"), 32, 30, 10, [92276, 93510], computed=True)
    blob = PlainJSON().dumps((Path("/c/train/k"), {"epochs": 3}, montages, dataset))
    json.loads(blob)  # readable JSON, no pickle
    folder, done, again, same = PlainJSON().loads(blob)
    assert (folder, done) == (Path("/c/train/k"), {"epochs": 3})
    assert (again.computed, again.reused, again.shards, again.failed) == (0, 3, montages.shards, montages.failed)
    assert not same.computed and same.folder == dataset.folder and same.zipcodes == dataset.zipcodes


def test_a_failed_tasks_error_is_written_as_its_words_and_read_back_as_an_error():
    from tasks.core.errors import DataError

    blob = PlainJSON().dumps(DataError("keeping each group whole leaves 0 test houses", "/data", 3))
    assert set(json.loads(blob)) == {"__error__"}  # no pickle, no class path
    error = PlainJSON().loads(blob)
    assert isinstance(error, DataError) and "0 test houses" in str(error) and "/data" in str(error)
    other = PlainJSON().loads(PlainJSON().dumps(ValueError("bad value")))
    assert type(other) is RuntimeError and str(other) == "bad value"


def test_only_registered_types_are_written_or_read():
    class Model:
        pass

    with pytest.raises(TypeError, match="not allowed in a cached result"):
        PlainJSON().dumps({"model": Model()})
    with pytest.raises(ValueError, match="unknown type 'Popen'"):
        PlainJSON().loads(b'{"__type__": "Popen", "fields": {"args": "rm -rf /"}}')


def test_a_hit_needs_a_complete_entry_and_a_record_written_as_plain_json(prefect_api, tmp_path):
    from prefect import flow, task

    entry, runs = tmp_path / "entry", []

    @task(**cached("probe", lambda inputs: (f"probe-{inputs['name']}", entry.is_dir())))
    def probe(name: str) -> dict:
        runs.append(name)
        entry.mkdir(exist_ok=True)
        return {"entry": entry}

    @flow
    def probe_flow(name: str) -> tuple[str, dict]:
        state = with_results_in(probe, tmp_path / "cache")(name, return_state=True)
        return state.name, state.result()

    assert probe_flow("a") == ("Completed", {"entry": entry})
    assert probe_flow("a") == ("Cached", {"entry": entry})
    record = tmp_path / "cache" / RESULTS_FOLDER / "probe-a"
    assert json.loads(record.read_text())["metadata"]["serializer"]["type"] == "house-pipeline-json"
    assert runs == ["a"]

    shutil.rmtree(entry)  # the entry is gone: Prefect's record must not stand in for it
    assert probe_flow("a")[0] == "Completed" and runs == ["a", "a"]
    assert probe_flow("a")[0] == "Cached"

    tampered = json.loads(record.read_text())
    tampered["metadata"]["serializer"] = {"type": "pickle", "picklelib": "cloudpickle"}
    record.write_text(json.dumps(tampered))  # a record we did not write is never deserialized
    assert probe_flow("a")[0] == "Completed" and runs == ["a", "a", "a"]
    assert probe_flow("a")[0] == "Cached"

    assert with_results_in(probe, tmp_path / "cache", refresh=True).refresh_cache is True
