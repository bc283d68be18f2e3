"""The preprocess flow end to end: `python -m flows preprocess` against a real Prefect API."""

from __future__ import annotations

import json
import signal
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from tasks.core.cache import Cache
from tests.fixtures import make_houses

pytestmark = pytest.mark.slow  # every test here runs the command in a subprocess


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _preprocess(run_cli, data: Path, out: Path, cache: Path, *extra: str, check: bool = True):
    return run_cli("preprocess", "--data", data, "--out", out, "--cache", cache,
                   "--min-houses-per-zip", "3", *extra, check=check)


def test_preprocess_writes_summary_and_reuses_the_cache(run_cli, houses: Path, tmp_path: Path):
    result = _preprocess(run_cli, houses, tmp_path / "out", tmp_path / "cache",
                         "--export-montages", tmp_path / "montages")
    summary = _summary(tmp_path / "out")
    assert {k: summary[k] for k in ("houses_read", "houses_kept", "zipcodes_kept", "train", "test")} == {
        "houses_read": 12, "houses_kept": 9, "zipcodes_kept": 2, "train": 6, "test": 3}
    assert summary["cache"] == {"montage_shards_built": 1, "montage_shards_reused": 0, "dataset_built": True}
    assert "Summary:" in result.stdout
    assert (tmp_path / "out" / "manifest.json").is_file() and (tmp_path / "out" / "encoders.json").is_file()
    kept = {1, 2, 3, 5, 6, 8, 9, 11, 12}
    assert {int(p.stem) for p in (tmp_path / "montages").glob("*.png")} == kept
    assert cv2.imread(str(tmp_path / "montages" / "1.png")).shape == (64, 64, 3)

    _preprocess(run_cli, houses, tmp_path / "out2", tmp_path / "cache")
    again = _summary(tmp_path / "out2")
    assert again["cache"] == {"montage_shards_built": 0, "montage_shards_reused": 1, "dataset_built": False}
    assert again["dataset"] == summary["dataset"]


@pytest.mark.parametrize("damage, expected", [
    (lambda d: (d / "4_kitchen.jpg").unlink(), "4_kitchen.jpg: photo is missing"),
    (lambda d: (d / "HousesInfo.txt").write_text("1 1 1000 90001\n"), "HousesInfo.txt:1: expected 5 fields"),
])
def test_bad_input_is_a_message_and_exit_2_with_nothing_written(run_cli, houses, tmp_path, damage, expected):
    damage(houses)
    result = _preprocess(run_cli, houses, tmp_path / "out", tmp_path / "cache", check=False)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()


def test_skip_lists_bad_houses_in_the_summary(run_cli, houses, tmp_path):
    (houses / "4_kitchen.jpg").unlink()
    (houses / "5_frontal.jpg").write_bytes(b"")
    _preprocess(run_cli, houses, tmp_path / "out", tmp_path / "cache", "--on-bad-house", "skip")
    summary = _summary(tmp_path / "out")
    assert [item["house"] for item in summary["skipped"]] == [4, 5]
    assert summary["houses_read"] == 12 and summary["houses_kept"] == 8


def test_invalid_parameter_is_rejected_before_any_work(run_cli, houses, tmp_path):
    result = _preprocess(run_cli, houses, tmp_path / "out", tmp_path / "cache", "--test-size", "1.5", check=False)
    assert result.returncode == 2 and "--test-size" in result.stderr
    assert not (tmp_path / "cache").exists()


def test_help_describes_every_option(run_cli):
    text = run_cli("preprocess", "--help").stdout
    for option in ("--data", "--out", "--cache", "--min-houses-per-zip", "--test-size", "--seed",
                   "--tile-size", "--export-montages", "--on-bad-house"):
        assert option in text


def test_two_runs_at_once_on_one_cache(run_cli, tmp_path: Path):
    data = make_houses(tmp_path / "many", [90000 + n % 3 for n in range(300)], photo_size=(24, 20))
    processes = [
        run_cli("preprocess", "--data", data, "--out", tmp_path / f"out{i}", "--cache", tmp_path / "cache",
                "--min-houses-per-zip", "3", background=True)
        for i in range(2)
    ]
    for process in processes:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    summaries = [_summary(tmp_path / f"out{i}") for i in range(2)]
    assert summaries[0]["dataset"] == summaries[1]["dataset"]
    cache = Cache(tmp_path / "cache")
    for stage in ("montages", "dataset"):
        names = [p.name for p in (tmp_path / "cache" / stage).iterdir()]
        assert all(cache.lookup(stage, name) for name in names), names
    assert pq.read_table(Path(summaries[0]["dataset"]) / "train.parquet").num_rows == summaries[0]["train"]


def test_run_killed_half_way_leaves_nothing_a_later_run_trusts(run_cli, tmp_path: Path):
    data = make_houses(tmp_path / "many", [90000 + n % 3 for n in range(1500)], photo_size=(96, 80))
    cache_dir = tmp_path / "cache"
    process = run_cli("preprocess", "--data", data, "--out", tmp_path / "out", "--cache", cache_dir,
                      "--min-houses-per-zip", "3", background=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill once some shards are done, before all are
        done = [p for p in (cache_dir / "montages").glob("[0-9a-f]*")] if (cache_dir / "montages").exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(p.name for p in (cache_dir / "montages").glob("[0-9a-f]*"))
    assert 2 <= len(finished) < 24, "the kill should land half-way through the montages"
    assert not (tmp_path / "out" / "summary.json").exists()
    cache = Cache(cache_dir)
    assert all(cache.lookup("montages", name) for name in finished)

    _preprocess(run_cli, data, tmp_path / "out", cache_dir)
    resumed = _summary(tmp_path / "out")
    assert resumed["cache"]["montage_shards_reused"] >= len(finished)
    _preprocess(run_cli, data, tmp_path / "fresh", tmp_path / "fresh-cache")
    fresh = Path(_summary(tmp_path / "fresh")["dataset"])
    for name in ("train.parquet", "test.parquet", "encoders.json"):
        assert (Path(resumed["dataset"]) / name).read_bytes() == (fresh / name).read_bytes()


def test_data_from_a_url_is_retried_downloaded_once_and_unpacked(run_cli, houses, tmp_path, http_server):
    root, base, server = http_server
    with zipfile.ZipFile(root / "houses.zip", "w") as bundle:
        for path in sorted(houses.iterdir()):
            bundle.write(path, f"Houses Dataset/{path.name}")
    url = f"{base}/houses.zip"
    server.fail_next["/houses.zip"] = 1  # a transient 503 first: the task's retry must fetch it again
    result = _preprocess(run_cli, url, tmp_path / "out", tmp_path / "cache")
    assert server.requests == ["/houses.zip", "/houses.zip"]
    assert "503" in result.stdout + result.stderr and "Downloading houses.zip" in result.stderr
    assert _summary(tmp_path / "out")["houses_kept"] == 9
    (root / "houses.zip").unlink()  # a second run must not need the server
    _preprocess(run_cli, url, tmp_path / "out", tmp_path / "cache")
    assert _summary(tmp_path / "out")["cache"]["dataset_built"] is False
    assert len(server.requests) == 2


def test_bad_url_or_bad_zip_is_a_clear_error(run_cli, tmp_path, http_server):
    root, base, server = http_server
    (root / "not-a.zip").write_text("hello")
    result = _preprocess(run_cli, f"{base}/not-a.zip", tmp_path / "out", tmp_path / "cache", check=False)
    assert result.returncode == 2 and "not a zip file" in result.stderr
    result = _preprocess(run_cli, f"{base}/missing.zip", tmp_path / "out", tmp_path / "cache", check=False)
    assert result.returncode == 2 and "cannot download" in result.stderr and "404" in result.stderr
    assert server.requests.count("/missing.zip") == 1  # a 404 is not worth a retry
    assert not any(p.name[0].isalnum() for p in (tmp_path / "cache" / "downloads").iterdir())


def test_real_dataset_keeps_358_houses_in_7_zipcodes_with_duplicate_records_left_out(run_cli, real_data, tmp_path):
    _preprocess_real = run_cli("preprocess", "--data", real_data, "--out", tmp_path / "out",
                               "--cache", tmp_path / "cache", "--export-montages", tmp_path / "m")
    summary = _summary(tmp_path / "out")
    # 362 houses in zip codes of 25 or more; 4 of them are second copies of a record (--duplicates keep-one).
    assert (summary["houses_read"], summary["houses_kept"], summary["zipcodes_kept"]) == (535, 358, 7)
    assert (summary["train"], summary["test"]) == (269, 89)
    assert summary["duplicates"]["counts"]["groups"] == 8
    assert "Summary:" in _preprocess_real.stdout
    from bench.common import tutorial_montage
    from tasks.houses.ingest import PHOTO_KINDS

    exported = sorted(int(p.stem) for p in (tmp_path / "m").glob("*.png"))
    assert len(exported) == 358
    house = exported[0]
    reference = tutorial_montage([real_data / f"{house}_{kind}.jpg" for kind in PHOTO_KINDS])
    ours = cv2.imread(str(tmp_path / "m" / f"{house}.png"))
    # Same layout and content; pixels differ by interpolation (area vs the tutorials' bilinear).
    assert np.corrcoef(ours.ravel(), reference.ravel())[0, 1] > 0.9


def test_default_data_is_the_committed_compact_copy(run_cli, tmp_path):
    run_cli("preprocess", "--out", tmp_path / "out", "--cache", tmp_path / "cache")
    summary = _summary(tmp_path / "out")
    assert (summary["houses_read"], summary["houses_kept"], summary["zipcodes_kept"]) == (535, 358, 7)
