"""Files read ahead of the work that uses them. A read mostly waits on the disk (or a network file system), not on
a core: so a few files are read at once on threads of their own, ahead of the threads that decode them, and the
decoding never waits for a file that could have been read meanwhile. On a cold cache this makes hashing and
tiling the photos about a quarter faster with one decoding thread (bench notes, issue 26); the cores used for
decoding stay as many as asked. HOUSE_PIPELINE_READS_PER_CORE sets the reading threads per decoding thread
(default 4; 0: each file read by the thread that decodes it, as before)."""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from tasks.core.errors import DataError

READS_PER_CORE = 4  # reading threads per decoding thread, unless HOUSE_PIPELINE_READS_PER_CORE says otherwise
CHUNK = 8  # items read and decoded per step of a thread
Item = TypeVar("Item")
Result = TypeVar("Result")
Content = bytes | OSError


def read_file(path: str | os.PathLike) -> Content:
    """The file's bytes, or the OSError that reading it raised (for the caller to name the file)."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        return error


def reads_per_core() -> int:
    """Reading threads per decoding thread: HOUSE_PIPELINE_READS_PER_CORE when set, else READS_PER_CORE."""
    chosen = os.environ.get("HOUSE_PIPELINE_READS_PER_CORE", "").strip()
    if not chosen:
        return READS_PER_CORE
    if not chosen.isdigit():
        raise DataError(f"HOUSE_PIPELINE_READS_PER_CORE={chosen!r}: give a whole number of reading threads per "
                        f"core, 0 or more (0: no read-ahead), or unset it for {READS_PER_CORE}")
    return int(chosen)


def read_threads(workers: int) -> int:
    """Threads to read files with, for `workers` threads that decode them (or for a task that only reads)."""
    return max(1, reads_per_core()) * max(1, workers)


def map_read_ahead(function: Callable[[Item, list[Content]], Result], items: Iterable[Item],
                   paths_of: Callable[[Item], Sequence[str | os.PathLike]], workers: int,
                   chunk: int = CHUNK) -> Iterator[Result]:
    """function(item, its files' contents) for each item, in the items' order, on `workers` threads, while
    reads_per_core() x `workers` threads read the next items' files (with none, each decoding thread reads its
    own). Items go `chunk` at a time: one read and one decoding step per chunk, not per file, so that the threads'
    bookkeeping (a future, a wake-up, the lock handed over) stays small next to decoding a photo. At most twice as
    many chunks as readers are read ahead (memory stays bounded). Work not started is dropped when the caller
    stops early or a call fails."""
    readers = read_threads(workers)
    reader = ThreadPoolExecutor(readers) if reads_per_core() else None  # None: read by the decoding thread
    worker = ThreadPoolExecutor(max(1, workers))
    reads: deque[tuple[list[Item], Future | None]] = deque()  # each chunk with its files' read (None: not yet)
    works: deque[Future] = deque()
    pending = iter(items)
    stopped = threading.Event()  # a call failed or the caller stopped: the chunks queued do nothing more

    def read_chunk(group: list[Item]) -> list[list[Content]]:
        return [[read_file(path) for path in paths_of(item)] for item in group]

    def read_more() -> None:
        while len(reads) < 2 * readers:
            group = list(itertools.islice(pending, max(1, chunk)))
            if not group:
                return
            reads.append((group, reader.submit(read_chunk, group) if reader else None))

    def run(group: list[Item], read: Future | None) -> list[Result]:
        contents = read.result() if read else read_chunk(group)
        results = []
        for item, files in zip(group, contents, strict=True):
            if stopped.is_set():
                break
            try:
                results.append(function(item, files))
            except BaseException:
                stopped.set()
                raise
        return results

    try:
        read_more()
        while reads or works:
            while reads and len(works) < 2 * max(1, workers):
                works.append(worker.submit(run, *reads.popleft()))
                read_more()
            yield from works.popleft().result()
    finally:
        stopped.set()
        worker.shutdown(wait=True, cancel_futures=True)
        if reader:
            reader.shutdown(wait=True, cancel_futures=True)


