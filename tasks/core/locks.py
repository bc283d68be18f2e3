"""One run at a time on a piece of expensive work (a training, a search point): an exclusive lock on
a file beside the cache, held while the work is looked up and, if missing, done. A second run on the
same work waits, then finds it done and reuses it. The operating system releases a lock whose
process dies, so a killed run never leaves a stale lock behind."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path, what: str, log: logging.Logger | logging.LoggerAdapter) -> Iterator[None]:
    """Hold the lock file `path` for the block; say in the log when another run holds it first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("Another run is computing %s; waiting for it to finish", what)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
