"""Files read ahead of their decoding: results in order, reads ahead but bounded, the decoding threads as many
as asked, failures and unreadable files named."""

import threading
import time

import cv2
import numpy as np
import pytest

from tasks.core import read_ahead
from tasks.core.errors import DataError
from tasks.core.images import read_image
from tasks.core.read_ahead import map_read_ahead, read_threads
from tasks.houses.montage import house_montage


@pytest.fixture
def files(tmp_path):
    paths = []
    for i in range(60):
        path = tmp_path / f"{i}.bin"
        path.write_bytes(f"file {i}".encode())
        paths.append(path)
    return paths


def test_results_come_in_the_items_order_with_each_items_files(files):
    items = list(range(0, 60, 2))
    got = list(map_read_ahead(lambda item, contents: (item, contents), items,
                              lambda item: [files[item], files[item + 1]], workers=3))
    assert got == [(i, [f"file {i}".encode(), f"file {i + 1}".encode()]) for i in items]


def test_a_file_that_cannot_be_read_comes_as_its_error(tmp_path, files):
    missing = tmp_path / "gone.bin"
    (content,) = next(map_read_ahead(lambda item, contents: contents, [missing], lambda item: [item], workers=1))
    assert isinstance(content, FileNotFoundError)
    with pytest.raises(DataError, match=r"gone\.bin.*cannot read this image \(No such file or directory\)"):
        read_image(missing)


def test_files_are_read_ahead_of_a_busy_decoder_but_not_all_at_once(files, monkeypatch):
    read = []
    real = read_ahead.read_file
    monkeypatch.setattr(read_ahead, "read_file", lambda path: (read.append(path), real(path))[1])
    seen_while_first_ran = []

    def slow_first(item, contents):
        if item == 0:  # the one decoding thread is busy: the readers go on meanwhile
            deadline = time.monotonic() + 5
            while len(read) < 10 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)
            seen_while_first_ran.append(len(read))
        return item

    got = map_read_ahead(slow_first, range(60), lambda item: [files[item]], workers=1, chunk_files=2)
    assert list(got) == list(range(60))
    # Ahead, within its bound: a chunk of two files per reader waiting, and the two chunks handed to decoding.
    assert 10 <= seen_while_first_ran[0] <= (read_threads(1) + 2) * 2
    assert len(read) == 60


def test_no_more_decoding_threads_than_workers(files):
    running, most, lock = [0], [0], threading.Lock()

    def work(item, contents):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return item

    assert list(map_read_ahead(work, range(60), lambda item: [files[item]], workers=2)) == list(range(60))
    assert most[0] == 2


def test_items_are_read_and_decoded_a_chunk_at_a_time(files, monkeypatch):
    reader_of = {}
    real = read_ahead.read_file
    def read(path):
        reader_of[files.index(path)] = threading.current_thread()
        return real(path)

    monkeypatch.setattr(read_ahead, "read_file", read)
    decoders = []

    def decode(item, contents):
        decoders.append((item, threading.current_thread()))
        return item

    got = map_read_ahead(decode, range(20), lambda item: [files[item]], workers=1, chunk_files=8)
    assert list(got) == list(range(20))
    # A chunk's files on one reading thread one after another, the chunk's items decoded by one thread.
    assert all(len({reader_of[i] for i in range(start, min(start + 8, 20))}) == 1 for start in (0, 8, 16))
    assert len({thread for _, thread in decoders}) == 1 and [item for item, _ in decoders] == list(range(20))
    # Items of four files each: two a chunk, each chunk's eight files on one thread.
    reader_of.clear()
    got = map_read_ahead(lambda item, contents: len(contents), range(0, 60, 4),
                         lambda item: files[item:item + 4], workers=1, chunk_files=8)
    assert list(got) == [4] * 15
    assert all(len({reader_of[i] for i in range(start, start + 8)}) == 1 for start in range(0, 56, 8))


def test_a_failure_stops_the_work_not_yet_started(files):
    started = []

    def work(item, contents):
        started.append(item)
        if item == 3:
            raise ValueError("bad item 3")
        return item

    with pytest.raises(ValueError, match="bad item 3"):
        list(map_read_ahead(work, range(60), lambda item: [files[item]], workers=1))
    assert len(started) < 10


def test_a_failure_stops_the_chunk_after_it_at_its_next_item(files):
    started, second_chunk_running = [], threading.Event()

    def work(item, contents):
        started.append(item)
        if item == 8:  # the second chunk, on the other decoding thread
            second_chunk_running.set()
        if item == 1:
            second_chunk_running.wait(5)
            raise ValueError("bad item 1")
        time.sleep(0.3)
        return item

    with pytest.raises(ValueError, match="bad item 1"):
        list(map_read_ahead(work, range(60), lambda item: [files[item]], workers=2, chunk_files=8))
    assert 8 in started and len([item for item in started if item >= 8]) <= 3  # not the whole chunk of eight


def test_a_failure_lets_the_chunks_before_it_finish_and_hands_back_all_their_results_first(files):
    """A later chunk failing must not cut an earlier one short: its caller (a shard of montages) counts on every
    result before the failure, in order, then the error."""
    third_chunk_failed = threading.Event()

    def work(item, contents):
        if item == 4:  # the third chunk, while the first is still at its first item
            third_chunk_failed.set()
            raise ValueError("bad item 4")
        if item == 0:
            third_chunk_failed.wait(5)
            time.sleep(0.2)
        return item

    handed_back = []
    with pytest.raises(ValueError, match="bad item 4"):
        for item in map_read_ahead(work, range(60), lambda item: [files[item]], workers=3, chunk_files=2):
            handed_back.append(item)
    assert handed_back == [0, 1, 2, 3]


def test_a_montage_from_files_equals_one_from_their_decoded_images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for kind in ("bathroom", "bedroom", "frontal", "kitchen"):
        paths.append(tmp_path / f"1_{kind}.jpg")
        cv2.imwrite(str(paths[-1]), rng.integers(0, 255, (120, 160, 3), np.uint8))
    tiles = [cv2.resize(cv2.imread(str(p), cv2.IMREAD_REDUCED_COLOR_2), (32, 32), interpolation=cv2.INTER_AREA)
             for p in paths]
    montage = house_montage(paths, 32)
    assert np.array_equal(montage[:32, :32], tiles[0]) and np.array_equal(montage[32:, 32:], tiles[2])
    paths[1].unlink()
    with pytest.raises(DataError, match=r"1_bedroom\.jpg.*cannot read this image"):
        house_montage(paths, 32)


def test_without_reading_threads_each_file_is_read_by_its_decoding_thread(files, monkeypatch):
    monkeypatch.setenv("HOUSE_PIPELINE_READS_PER_CORE", "0")
    readers = []
    real = read_ahead.read_file
    monkeypatch.setattr(read_ahead, "read_file",
                        lambda path: (readers.append(threading.current_thread()), real(path))[1])
    decoders = []

    def decode(item, contents):
        decoders.append(threading.current_thread())
        return contents[0]

    assert list(map_read_ahead(decode, range(20), lambda item: [files[item]], workers=2)) == [
        f"file {i}".encode() for i in range(20)]
    assert set(readers) <= set(decoders) and len(readers) == 20 and read_threads(3) == 3
    monkeypatch.setenv("HOUSE_PIPELINE_READS_PER_CORE", "many")
    with pytest.raises(DataError, match="HOUSE_PIPELINE_READS_PER_CORE='many'.*0 or more"):
        read_threads(1)
