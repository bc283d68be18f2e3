"""Files read ahead of the work that uses them. A read mostly waits on the disk (or a network file system), not on
a core: so a few files are read at once on threads of their own, ahead of the threads that decode them, and the
decoding never waits for a file that could have been read meanwhile. On a cold cache this makes hashing and
tiling the photos about a quarter faster with one decoding thread (bench notes, issue 26); the cores used for
decoding stay as many as asked. HOUSE_PIPELINE_READS_PER_CORE sets the reading threads per decoding thread
(default 4; 0: each file read by the thread that decodes it, as before)."""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from tasks.core.errors import DataError

READS_PER_CORE = 4  # reading threads per decoding thread, unless HOUSE_PIPELINE_READS_PER_CORE says otherwise
CHUNK_FILES = 8  # files (whole items) read and decoded per step of a thread
Item = TypeVar("Item")
Result = TypeVar("Result")
Content = bytes | OSError
_END = object()


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
                   chunk_files: int = CHUNK_FILES) -> Iterator[Result]:
    """function(item, its files' contents) for each item, in the items' order, on `workers` threads, while
    reads_per_core() x `workers` threads read the next items' files (with none, each decoding thread reads its
    own). Items go in chunks of about `chunk_files` files (whole items, at least one): one read and one decoding
    step per chunk, not per file, so that the threads' bookkeeping (a future, a wake-up, the lock handed over)
    stays small next to decoding a photo. At most one chunk per reading thread waits read ahead, besides the
    chunks being decoded (memory stays bounded). When a call fails, the chunks before it still finish (every
    result before the failure is handed back, then the error) and the chunks after it stop; when the caller
    stops early, every chunk stops at its next item."""
    readers = read_threads(workers)
    reader = ThreadPoolExecutor(readers) if reads_per_core() else None  # None: read by the decoding thread
    worker = ThreadPoolExecutor(max(1, workers))
    reads: deque[tuple[int, list, Future | None]] = deque()  # (number, [(item, paths)], its read or None)
    works: deque[tuple[Future, int]] = deque()  # each chunk's decoding and its number of items
    pending, numbers = iter(items), itertools.count()
    first_failed = [math.inf]  # the number of the first chunk whose call failed; -1 once the caller stopped
    lock = threading.Lock()

    def abandoned(number: int) -> bool:
        """Whether the chunk `number` will never be handed back (a chunk before it failed, or the caller left)."""
        return number > first_failed[0]

    def stop_after(number: int) -> None:
        with lock:
            first_failed[0] = min(first_failed[0], number)

    def next_chunk() -> list[tuple[Item, list]]:
        group, files = [], 0
        while files < chunk_files:
            item = next(pending, _END)
            if item is _END:
                break
            paths = list(paths_of(item))
            group.append((item, paths))
            files += max(1, len(paths))
        return group

    def read_chunk(number: int, group: list[tuple[Item, list]]) -> list[list[Content]] | None:
        contents = []
        for _, paths in group:
            if abandoned(number):
                return None
            contents.append([read_file(path) for path in paths])
        return contents

    def read_more() -> None:
        while len(reads) < readers:
            group = next_chunk()
            if not group:
                return
            number = next(numbers)
            reads.append((number, group, reader.submit(read_chunk, number, group) if reader else None))

    def run(number: int, group: list[tuple[Item, list]], read: Future | None) -> list[Result]:
        try:
            contents = None if abandoned(number) else read.result() if read else read_chunk(number, group)
            if contents is None:  # abandoned before or while it was read: never handed back
                return []
            results = []
            for (item, _), files in zip(group, contents, strict=True):
                if abandoned(number):
                    break
                results.append(function(item, files))
            return results
        except BaseException:
            stop_after(number)
            raise

    try:
        read_more()
        while reads or works:
            while reads and len(works) < 2 * max(1, workers):
                number, group, read = reads.popleft()
                works.append((worker.submit(run, number, group, read), len(group)))
                read_more()
            decoding, expected = works.popleft()
            results = decoding.result()
            if len(results) != expected:  # only chunks after a failure stop short, and those are never reached
                raise RuntimeError(f"read-ahead: a chunk handed back {len(results)} of its {expected} results")
            yield from results
    finally:
        stop_after(-1)
        worker.shutdown(wait=True, cancel_futures=True)
        if reader:
            reader.shutdown(wait=True, cancel_futures=True)


