"""Expected faults around a run, each said in one line with its own exit code (the README's error table):
a disk that is full or a place that cannot be written (74), a service that cannot be reached (69).

`writing(what)` turns an OSError raised while writing a named place (`--out runs/train`, `--cache .cache`,
`the MLflow store ...`) into a `WriteFailed` that names the place and the device; errors it does not know
pass through unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path

EXIT_UNREACHABLE = 69  # sysexits EX_UNAVAILABLE: a service (Prefect API, MLflow, an object store) does not answer
EXIT_CANNOT_WRITE = 74  # sysexits EX_IOERR: no space left, permission denied, read-only file system
EXIT_DEFERRED = 75  # sysexits EX_TEMPFAIL: the run's files are written, its record waits for the tracking server

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
NOT_ALLOWED = (errno.EACCES, errno.EPERM, errno.EROFS)


class Fault(Exception):
    """An expected fault of the machine or a service, not of the input or the code."""

    exit_code = 1


class WriteFailed(Fault):
    exit_code = EXIT_CANNOT_WRITE


class Unreachable(Fault):
    exit_code = EXIT_UNREACHABLE


def device_of(path: Path | str) -> Path:
    """The mount point of the file system holding `path` (or its nearest existing parent)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path):
        path = path.parent
    return path


def error_number(error: BaseException) -> int | None:
    """The errno behind an error, also where a library kept only its text ("[Errno 28] ...", Arrow's
    "[errno 28]")."""
    number = getattr(error, "errno", None)
    if isinstance(number, int):
        return number
    found = re.search(r"\[errno (\d+)\]", str(error), re.IGNORECASE)
    return int(found[1]) if found else None


def write_failure(error: OSError, what: str, place: Path | str | None = None) -> WriteFailed | None:
    """The one-line fault for an OSError met while writing `what` (e.g. "--out runs/train"), or None."""
    where = place or getattr(error, "filename", None) or "."
    number = error_number(error)
    if number in NO_SPACE:
        return WriteFailed(f"no space left on {device_of(where)} while writing {what}: free some space there or "
                           "choose another place (earlier results there are unchanged)")
    if number in NOT_ALLOWED:
        why = "a read-only file system" if number == errno.EROFS else "permission denied"
        return WriteFailed(f"cannot write {what} ({why}: {getattr(error, 'filename', None) or where}): choose a "
                           "place you can write (earlier results there are unchanged)")
    return None


def _concerns(error: OSError, place: Path | str | None) -> bool:
    """The error is about a file in `place` (or names no file)."""
    filename = getattr(error, "filename", None)
    if place is None or filename is None:
        return True
    folder = Path(os.path.abspath(place))
    file = Path(os.path.abspath(os.fsdecode(filename)))
    return file == folder or folder in file.parents


@contextlib.contextmanager
def writing(what: str, place: Path | str | None = None) -> Iterator[None]:
    """Within the block, a full disk or a refused write of a file in `place` becomes a `WriteFailed` naming
    `what`; other errors pass through."""
    try:
        yield
    except OSError as error:
        fault = write_failure(error, what, place) if _concerns(error, place) else None
        if fault is None:
            raise
        raise fault from error


def cause_chain(error: BaseException) -> Iterator[BaseException]:
    """The error and the errors behind it (__cause__ or __context__), nearest first."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
