"""A content-keyed cache of folders: an entry is complete and verified, or absent.

Layout: `ROOT/STAGE/KEY/` holds a stage's output files plus `_entry.json`, which lists each file
with its size and sha256. An entry is written in a temporary folder `ROOT/STAGE/.tmp-PID-RANDOM`
and renamed into place in one step, so a killed run leaves only a temporary folder that no lookup
trusts (and the next run removes). If two runs build the same entry at once, the first rename wins
and the other run's copy is thrown away: both produced the same content from the same key.

A lookup checks every listed file's content, not only that it is there with its size: a file
deleted, truncated or damaged in place (a flipped bit, a partial copy over an old file) makes the
entry damaged; it is reported in the log, removed and rebuilt, never returned. Parquet files carry
page checksums too (`tasks.core.parquet`), so a page damaged after the lookup is caught on read.

A cache on object storage (`--cache s3://bucket/prefix`) keeps the same entries in its local mirror
(tasks.core.storage) and commits each one to the store without a rename: the data objects under a prefix of
this writer's, then `_entry.json` last, created only if absent, so the first writer of a key wins and the
other removes its objects. A lookup reads the remote `_entry.json` (one request) and downloads only what the
mirror lacks, verified by sha256; a damaged remote entry is removed from the store and rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from tasks.core import storage
from tasks.core.faults import writing
from tasks.core.hashing import file_sha256

ENTRY_FILE = "_entry.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def listing(folder: Path) -> dict[str, dict]:
    """{file: {"size", "sha256"}} for every file below `folder` (the entry listing's content)."""
    return {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": file_sha256(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ENTRY_FILE}


def damage(folder: Path) -> str | None:
    """Why the entry in `folder` cannot be trusted, or None when every listed file is as it was written."""
    try:
        files = json.loads((folder / ENTRY_FILE).read_text())["files"]
        expected = {name: (item["size"], item["sha256"]) for name, item in files.items()}
    except FileNotFoundError:
        return "no entry listing (an unfinished or foreign folder)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"its {ENTRY_FILE} is unreadable"
    for name, (size, sha256) in expected.items():
        path = folder / name
        try:
            if path.stat().st_size != size:
                return f"{name} has {path.stat().st_size} bytes, {size} were written"
            if file_sha256(path) != sha256:
                return f"{name} changed since it was written (sha256 differs)"
        except OSError:
            return f"{name} is missing"
    return None


class Cache:
    """`refresh=True` (--refresh-cache): lookups find nothing and writes replace the entries they rebuild."""

    def __init__(self, root: Path | str, log: logging.Logger | logging.LoggerAdapter | None = None,
                 refresh: bool = False):
        self.root = storage.localized(storage.working_path(root))  # a remote cache works in its mirror
        self.remote = storage.remote_of(self.root)
        self.log = log or logging.getLogger(__name__)
        self.refresh = refresh

    def _url(self, stage: str, key: str) -> str:
        return storage.join(self.remote, stage, key)

    def entry_path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def lookup(self, stage: str, key: str) -> Path | None:
        """The entry's folder if it is complete and verified, else None (a damaged entry is removed)."""
        return None if self.refresh else self._verified(stage, key)

    def _verified(self, stage: str, key: str) -> Path | None:
        path = self.entry_path(stage, key)
        if self.remote is not None:
            return self._fetched(stage, key)
        if not path.exists():
            return None
        problem = damage(path)
        if problem is None:
            return path
        self.log.warning("Cache entry %s/%s is damaged (%s): removed, it will be rebuilt", stage, key[:12], problem)
        self._remove(path)
        return None

    def _fetched(self, stage: str, key: str) -> Path | None:
        """A remote entry, brought into the mirror and verified; None when there is none (or it was damaged)."""
        path = self.entry_path(stage, key)
        manifest, problem = storage.fetch_committed(self._url(stage, key), path)
        if manifest is None:
            if problem is not None:
                self.log.warning("Cache entry %s/%s is damaged (%s): removed, it will be rebuilt", stage, key[:12],
                                 problem)
            if path.exists():  # a mirror copy the store no longer holds is not an entry
                self._remove(path)
            return None
        (path / ENTRY_FILE).write_text(json.dumps({"key": key, "files": manifest["files"]}, indent=1))
        return path if damage(path) is None else None

    @contextlib.contextmanager
    def write(self, stage: str, key: str) -> Iterator[Path]:
        """Yield an empty temporary folder; on success it becomes the entry `stage/key`."""
        stage_dir = self.root / stage
        with writing(f"--cache {storage.shown(self.root)}", self.root):
            stage_dir.mkdir(parents=True, exist_ok=True)
            self._sweep_abandoned(stage_dir)
            tmp = stage_dir / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
            tmp.mkdir()
        try:
            with writing(f"--cache {storage.shown(self.root)}", self.root):
                yield tmp
                self._commit(tmp, stage_dir, stage, key)
            if self.remote is not None:
                self._commit_remote(stage, key)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _commit(self, tmp: Path, stage_dir: Path, stage: str, key: str) -> None:
        """The listing last, then the folder renamed into place (a twin written meanwhile wins)."""
        (tmp / ENTRY_FILE).write_text(json.dumps({"key": key, "files": listing(tmp)}, indent=1))
        try:
            os.rename(tmp, stage_dir / key)
        except OSError:
            if self.refresh:  # the rebuilt entry replaces the old one
                self._remove(stage_dir / key)
                os.rename(tmp, stage_dir / key)
            elif self._verified(stage, key) is None:  # not a concurrent twin: a real failure
                raise
            else:
                shutil.rmtree(tmp, ignore_errors=True)

    def _commit_remote(self, stage: str, key: str) -> None:
        """The entry's objects, then its listing, to the store; a twin committed first wins (its files then
        replace this writer's in the mirror)."""
        path = self.entry_path(stage, key)
        files = json.loads((path / ENTRY_FILE).read_text())["files"]
        if not storage.commit(path, self._url(stage, key), files, {"key": key}, replace=self.refresh):
            self.log.info("Cache entry %s/%s was written by another run first: using that one", stage, key[:12])
            if self._fetched(stage, key) is None:
                raise RuntimeError(f"the cache entry {stage}/{key[:12]} committed by another run cannot be read")

    @staticmethod
    def _remove(path: Path) -> None:
        doomed = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex}")
        with contextlib.suppress(OSError):
            os.rename(path, doomed)  # one step out of sight, then delete at leisure
            shutil.rmtree(doomed, ignore_errors=True)

    @staticmethod
    def _sweep_abandoned(stage_dir: Path) -> None:
        """Remove temporary folders left by runs that were killed."""
        for tmp in stage_dir.glob(".tmp-*"):
            try:
                pid = int(tmp.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and not _pid_alive(pid):
                shutil.rmtree(tmp, ignore_errors=True)
