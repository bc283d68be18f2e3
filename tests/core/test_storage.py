"""The storage layer against a real S3 endpoint (moto_server on 127.0.0.1): entries committed manifest-last and
found by another machine, damaged objects noticed and rebuilt, the first of two writers wins, leases taken over
after their owner stops renewing them, run folders published listing-last, and one line for each location that
cannot be used."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest
import s3fs

from tasks.core import storage
from tasks.core.cache import Cache
from tasks.core.errors import DataError
from tasks.core.faults import Unreachable
from tasks.core.locks import Lease
from tests.fixtures import free_port


def _fs() -> s3fs.S3FileSystem:
    return s3fs.S3FileSystem(skip_instance_cache=True)


def _fill(cache: Cache, key: str, text: str) -> Path:
    with cache.write("stage", key) as tmp:
        (tmp / "a.txt").write_text(text)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.bin").write_bytes(text.encode() * 100)
    return cache.entry_path("stage", key)


def _another_machine(monkeypatch, tmp_path: Path, name: str) -> None:
    """Another machine sees the same bucket through a mirror of its own."""
    monkeypatch.setenv("HOUSE_PIPELINE_MIRROR", str(tmp_path / name))


def test_an_entry_is_committed_manifest_last_and_found_by_another_machine(bucket, tmp_path, monkeypatch):
    cache = Cache(f"{bucket}/cache")
    entry = _fill(cache, "k1", "hello")
    assert storage.remote_of(entry) == f"{bucket}/cache/stage/k1" and (entry / "a.txt").read_text() == "hello"
    objects = sorted(_fs().find(f"{bucket}/cache/stage/k1"))
    manifest = json.loads(_fs().cat_file(f"{bucket}/cache/stage/k1/_entry.json"))
    writer = manifest["writer"]
    assert objects == [f"{bucket[5:]}/cache/stage/k1/{n}" for n in ("_entry.json", f"{writer}/a.txt",
                                                                      f"{writer}/sub/b.bin")]
    _another_machine(monkeypatch, tmp_path, "other")
    found = Cache(f"{bucket}/cache").lookup("stage", "k1")
    assert found is not None and found != entry and str(tmp_path / "other") in str(found)
    assert (found / "sub" / "b.bin").read_bytes() == b"hello" * 100


def test_a_damaged_object_is_noticed_removed_from_the_store_and_rebuilt(bucket, tmp_path, monkeypatch, caplog):
    _fill(Cache(f"{bucket}/cache"), "k1", "hello")
    writer = json.loads(_fs().cat_file(f"{bucket}/cache/stage/k1/_entry.json"))["writer"]
    _fs().pipe_file(f"{bucket}/cache/stage/k1/{writer}/a.txt", b"jello")  # a changed object, same size
    _another_machine(monkeypatch, tmp_path, "other")
    cache = Cache(f"{bucket}/cache")
    with caplog.at_level(logging.WARNING):
        assert cache.lookup("stage", "k1") is None
    assert "Cache entry stage/k1 is damaged (a.txt changed since it was written" in caplog.text
    assert not _fs().exists(f"{bucket}/cache/stage/k1/_entry.json")  # gone from the store: nobody trusts it
    _fill(cache, "k1", "hello")
    assert (Cache(f"{bucket}/cache").lookup("stage", "k1") / "a.txt").read_text() == "hello"


def test_of_two_writers_of_one_key_the_first_manifest_wins_and_the_loser_keeps_nothing(bucket, tmp_path, monkeypatch):
    first = Cache(f"{bucket}/cache")
    _fill(first, "k1", "AAA")
    _another_machine(monkeypatch, tmp_path, "other")
    second = Cache(f"{bucket}/cache")
    folder = tmp_path / "loser"
    folder.mkdir()
    (folder / "a.txt").write_text("BBB")
    files = storage.manifest_of(folder, ["a.txt"])
    assert not storage.commit(folder, f"{bucket}/cache/stage/k1", files, {"key": "k1"})  # the conditional PUT lost
    writers = {p.split("/k1/")[1].split("/")[0] for p in _fs().find(f"{bucket}/cache/stage/k1") if "/w-" in p}
    assert len(writers) == 1  # the loser's objects are gone
    assert (second.lookup("stage", "k1") / "a.txt").read_text() == "AAA"


def test_a_lease_is_exclusive_and_taken_over_once_its_owner_stops_renewing_it(bucket):
    log = logging.getLogger("test")
    url = f"{bucket}/cache/locks/train-k1.lock"
    holder = Lease(url, "the model k1", log, seconds=2)
    holder.acquire()
    holder._stop.set()  # the owner dies: nobody renews the lease any more
    started, taker = time.monotonic(), Lease(url, "the model k1", log, seconds=2)
    taker.acquire()  # waits for the expiry, then takes over with a compare-and-swap
    assert 1.5 < time.monotonic() - started < 15
    assert json.loads(_fs().cat_file(url))["owner"] == taker.owner
    holder_still_thinks = holder._put(holder.etag)  # the old owner's renewal now fails: no two holders
    assert holder_still_thinks is None
    taker.release()
    assert not _fs().exists(url)


def test_a_renewed_lease_keeps_others_waiting(bucket):
    log = logging.getLogger("test")
    url = f"{bucket}/locks/x.lock"
    order: list[str] = []
    def wait_then_hold() -> None:
        with Lease(url, "x", log, seconds=1.2):
            order.append("b")

    with Lease(url, "x", log, seconds=1.2):
        waiter = threading.Thread(target=wait_then_hold)
        waiter.start()
        time.sleep(3)  # well past one lease time: renewals keep it
        order.append("a")
    waiter.join(15)
    assert order == ["a", "b"]


def test_a_run_folder_is_published_with_its_listing_last_and_old_objects_removed(bucket, tmp_path):
    folder = tmp_path / "run"
    (folder / "model").mkdir(parents=True)
    (folder / "report.md").write_text("# new")
    (folder / "model" / "model.keras").write_bytes(b"weights")
    _fs().pipe_file(f"{bucket}/runs/train/old-plot.png", b"old")
    storage.publish_folder(folder, f"{bucket}/runs/train")
    names = sorted(p.split("/", 1)[1] for p in _fs().find(f"{bucket}/runs/train"))
    assert names == ["runs/train/_entry.json", "runs/train/model/model.keras", "runs/train/report.md"]
    listing = json.loads(_fs().cat_file(f"{bucket}/runs/train/_entry.json"))["files"]
    assert listing["report.md"]["sha256"] == storage.sha256_file(folder / "report.md")


def test_inputs_are_mirrored_and_only_changed_objects_come_again(bucket, tmp_path, caplog):
    for name in ("a.txt", "b.txt"):
        _fs().pipe_file(f"{bucket}/in/{name}", name.encode())
    with caplog.at_level(logging.INFO, logger="tasks.core.storage"):
        local = storage.fetch_folder(f"{bucket}/in")
        _fs().pipe_file(f"{bucket}/in/b.txt", b"changed")
        storage.fetch_folder(f"{bucket}/in")
    assert (local / "b.txt").read_bytes() == b"changed" and (local / "a.txt").read_bytes() == b"a.txt"
    assert "Downloading 2 of 2 objects" in caplog.text and "Downloading 1 of 2 objects" in caplog.text


def test_each_location_that_cannot_be_used_is_one_line(bucket, moto, monkeypatch):
    with pytest.raises(DataError, match=r"--cache s3://no-such-bucket-x/c: the bucket 'no-such-bucket-x' does not "
                                        r"exist"):
        storage.check_location("--cache", "s3://no-such-bucket-x/c", write=True)
    with pytest.raises(DataError, match=r"no filesystem for gs:// is installed \(pip install gcsfs\)"):
        storage.check_location("--out", "gs://b/x")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(DataError, match="no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        storage.check_location("--cache", f"{bucket}/c", write=True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(Unreachable, match=r"--cache s3://.*: http://127.0.0.1:\d+ does not answer"):
        storage.check_location("--cache", f"{bucket}/c", write=True)
    s3fs.S3FileSystem.clear_instance_cache()


def test_access_denied_is_one_line(tmp_path, monkeypatch):
    """A store that checks credentials (moto with IAM on) refuses unknown keys."""
    from tests import servers

    strict = servers.moto_server(tmp_path / "strict", {"INITIAL_NO_AUTH_ACTION_COUNT": "0"}).start(timeout=60)
    try:
        for name, value in servers.s3_env(strict).items():
            monkeypatch.setenv(name, value)
        s3fs.S3FileSystem.clear_instance_cache()
        with pytest.raises(DataError, match=r"--out s3://any-bucket/x: access denied"):
            storage.check_location("--out", "s3://any-bucket/x", write=True)
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        strict.stop()
    assert os.environ["AWS_ENDPOINT_URL"].endswith(str(strict.port))
