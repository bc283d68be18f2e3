from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from tasks.core.cache import Cache
from tasks.core.files import atomic_write_json


def _fill(cache: Cache, key: str, text: str) -> Path:
    with cache.write("stage", key) as folder:
        (folder / "a.txt").write_text(text)
        (folder / "sub").mkdir()
        (folder / "sub" / "b.bin").write_bytes(b"x" * 100)
    return cache.entry_path("stage", key)


def test_written_entry_is_found_with_its_files(tmp_path: Path):
    cache = Cache(tmp_path)
    assert cache.lookup("stage", "k1") is None
    _fill(cache, "k1", "hello")
    found = cache.lookup("stage", "k1")
    assert found is not None and (found / "a.txt").read_text() == "hello"
    files = json.loads((found / "_entry.json").read_text())["files"]
    assert files == {"a.txt": {"size": 5, "sha256": hashlib.sha256(b"hello").hexdigest()},
                     "sub/b.bin": {"size": 100, "sha256": hashlib.sha256(b"x" * 100).hexdigest()}}


def _flip_a_byte(path: Path) -> None:
    """Damage in place, size unchanged: a bad sector, a bit flip, a partial copy over an old file."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["delete", "truncate", "delete-listing", "flip-a-byte", "same-size-rewrite",
                                    "old-listing"])
def test_damaged_entry_is_never_a_hit(tmp_path: Path, damage: str, caplog):
    cache = Cache(tmp_path)
    entry = _fill(cache, "k1", "hello")
    if damage == "delete":
        (entry / "sub" / "b.bin").unlink()
    elif damage == "truncate":
        (entry / "a.txt").write_text("he")
    elif damage == "delete-listing":
        (entry / "_entry.json").unlink()
    elif damage == "flip-a-byte":
        _flip_a_byte(entry / "sub" / "b.bin")
    elif damage == "same-size-rewrite":
        (entry / "a.txt").write_text("jello")
    else:  # a listing of sizes only, as written before content was verified: not to be trusted
        (entry / "_entry.json").write_text(json.dumps({"key": "k1", "files": {"a.txt": 5, "sub/b.bin": 100}}))
    with caplog.at_level(logging.WARNING, logger="tasks.core.cache"):
        assert cache.lookup("stage", "k1") is None
    assert not entry.exists()  # removed, so the next write starts clean
    assert "Cache entry stage/k1 is damaged" in caplog.text and "removed, it will be rebuilt" in caplog.text


def test_parquet_pages_carry_checksums_that_reads_verify(tmp_path: Path):
    import pyarrow as pa

    from tasks.core import parquet

    path = tmp_path / "t.parquet"
    parquet.write_table(pa.table({"x": list(range(50_000))}), path, compression="none")
    assert parquet.read_table(path)["x"].to_pylist()[-1] == 49_999
    _flip_a_byte(path)
    with pytest.raises(OSError, match="CRC|checksum"):
        parquet.read_table(path)


def test_failed_write_leaves_nothing(tmp_path: Path):
    cache = Cache(tmp_path)
    with pytest.raises(RuntimeError):
        with cache.write("stage", "k1") as folder:
            (folder / "half.txt").write_text("half")
            raise RuntimeError("boom")
    assert cache.lookup("stage", "k1") is None
    assert list((tmp_path / "stage").iterdir()) == []


def _write_slowly(root: str, started) -> None:
    with Cache(Path(root)).write("stage", "k1") as folder:
        (folder / "part.txt").write_text("partial")
        started.set()
        time.sleep(60)


def test_killed_writer_leaves_only_a_temporary_folder_that_is_swept(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    process = context.Process(target=_write_slowly, args=(str(tmp_path), started))
    process.start()
    assert started.wait(60)
    os.kill(process.pid, signal.SIGKILL)
    process.join()
    cache = Cache(tmp_path)
    assert cache.lookup("stage", "k1") is None
    assert [p.name.startswith(".tmp-") for p in (tmp_path / "stage").iterdir()] == [True]
    _fill(cache, "k1", "complete")  # the next write sweeps the dead run's folder
    assert sorted(p.name for p in (tmp_path / "stage").iterdir()) == ["k1"]


def _race(root: str, text: str, barrier, seen) -> None:
    """Build a complete entry, wait until the twin has built its own, then both rename at once: the
    collision at the rename is forced, not hoped for."""
    cache = Cache(Path(root))
    with cache.write("stage", "k1") as folder:
        (folder / "a.txt").write_text(text)
        (folder / "b.bin").write_bytes(text.encode() * 1000)
        barrier.wait(60)
    entry = cache.lookup("stage", "k1")
    seen.put((text, None if entry is None else (entry / "a.txt").read_text()))


def test_concurrent_writers_of_one_key_leave_one_complete_entry(tmp_path: Path):
    context = multiprocessing.get_context("spawn")
    barrier, seen = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_race, args=(str(tmp_path), text, barrier, seen)) for text in ("AAA", "BBB")]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0  # the loser of the rename neither fails nor leaves its folder
    results = dict(seen.get(timeout=5) for _ in processes)
    winner = results["AAA"]
    assert winner in ("AAA", "BBB") and results["BBB"] == winner  # both read the one entry that won
    entry = Cache(tmp_path).lookup("stage", "k1")
    assert (entry / "a.txt").read_text() == winner and (entry / "b.bin").read_bytes() == winner.encode() * 1000
    assert [p.name for p in (tmp_path / "stage").iterdir()] == ["k1"]


def test_atomic_json_replaces_whole_file(tmp_path: Path):
    path = tmp_path / "out" / "summary.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]
