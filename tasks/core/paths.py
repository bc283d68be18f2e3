"""Paths checked before any work: an input of the right kind that exists, an output where one can
be written and that does not land inside the input data. Each problem is one DataError naming the
option and the path; nothing is created by a check. A location on object storage (a mirror path,
tasks.core.storage) is checked against the store: an input is brought into its mirror, an output must be
writable there (bucket, credentials, permissions, endpoint: one line each)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tasks.core import storage
from tasks.core.errors import DataError


def _problem(option: str, path: Path | str, text: str) -> DataError:
    return DataError(f"{option} {storage.shown(path)}: {text}")


def check_input_folder(option: str, path: Path) -> None:
    if remote := storage.remote_of(path):
        storage.check_location(option, remote)
        try:
            storage.fetch_folder(remote)
        except DataError as error:
            raise _problem(option, path, error.message) from None
    if not path.exists():
        raise _problem(option, path, "no such folder")
    if not path.is_dir():
        raise _problem(option, path, "is a file, not a folder")


def check_input_file(option: str, path: Path) -> None:
    if remote := storage.remote_of(path):
        storage.check_location(option, remote.rpartition("/")[0])
        try:
            storage.fetch_file(remote)
        except DataError as error:
            raise _problem(option, path, error.message) from None
    if not path.exists():
        raise _problem(option, path, "no such file")
    if path.is_dir():
        raise _problem(option, path, "is a folder, not a file")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _check_writable_place(option: str, path: Path) -> None:
    """Every existing part of `path` is a folder, and the nearest existing one accepts new files."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise _problem(option, path, f"{existing} is a file, so nothing can be created under it")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".house-pipeline-probe-")
    except OSError as error:
        raise _problem(option, path, f"cannot write in {existing} ({error.strerror}); choose a writable place") \
            from None
    os.close(handle)
    os.unlink(probe)


def check_output_folder(option: str, path: Path, inputs: dict[str, Path] | None = None) -> None:
    """A folder to write into: absent (it will be created) or a folder; writable; outside every input."""
    if remote := storage.remote_of(path):
        for input_option, folder in (inputs or {}).items():
            if (storage.remote_of(folder) or "") and remote.startswith(storage.remote_of(folder).rstrip("/") + "/"):
                raise _problem(option, path, f"is inside the input data ({input_option} {storage.shown(folder)})")
        storage.check_location(option, remote, write=True)
        return
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise _problem(option, path, "is a file; give a folder")
    for input_option, folder in (inputs or {}).items():
        if folder.is_dir() and _inside(path, folder):
            raise _problem(option, path, f"is inside the input data ({input_option} {folder}); choose a folder "
                                         "outside it, so that nothing is written among the inputs")
    _check_writable_place(option, path)


RUN_FILE = "run.json"  # in every run folder: which flow run wrote it
# What runs wrote at the top of their folders before run.json existed (such folders are replaced too).
RUN_FOLDER_FILES = {RUN_FILE, "summary.json", "metrics.json", "leaderboard.md", "predictions.parquet", "quality.md"}


def check_run_folder(option: str, path: Path, inputs: dict[str, Path] | None = None) -> None:
    """A run's output folder: as `check_output_folder`, and when it holds files, they are a run's (a run
    replaces its folder as a whole, so it never takes over a folder of other files)."""
    check_output_folder(option, path, inputs)
    if remote := storage.remote_of(path):
        names = {name.split("/")[0] for name in storage.listing(remote)}
        if names and not names & (RUN_FOLDER_FILES | {storage.MANIFEST}):
            raise _problem(option, path, f"holds objects that no run wrote (no {RUN_FILE}); a run replaces its output "
                                         "folder as a whole, so give a new or empty prefix")
        return
    path = Path(path).expanduser()
    if path.is_dir() and any(path.iterdir()) and not any((path / name).exists() for name in RUN_FOLDER_FILES):
        raise _problem(option, path, f"holds files that no run wrote (no {RUN_FILE}); a run replaces its output "
                                     "folder as a whole, so give a new or empty folder")


def check_output_file(option: str, path: Path, inputs: dict[str, Path] | None = None) -> None:
    """A file to write: absent or a file, in a writable place outside every input."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise _problem(option, path, "is a folder; give a file name")
    for input_option, folder in (inputs or {}).items():
        if folder.is_dir() and _inside(path, folder):
            raise _problem(option, path, f"is inside the input data ({input_option} {folder}); write it elsewhere")
    _check_writable_place(option, path.parent)
