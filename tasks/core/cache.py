"""A content-keyed cache of folders: an entry is complete or absent, never half-written.

Layout: `ROOT/STAGE/KEY/` holds a stage's output files plus `_entry.json`, which lists each
file with its size. An entry is written in a temporary folder `ROOT/STAGE/.tmp-PID-RANDOM` and
renamed into place in one step, so a killed run leaves only a temporary folder that no lookup
trusts (and the next run removes). If two runs build the same entry at once, the first rename
wins and the other run's copy is thrown away: both produced the same content from the same key.
A lookup checks that every listed file is still there with its size; an entry with a deleted or
truncated file is removed and rebuilt, never returned.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

ENTRY_FILE = "_entry.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def entry_path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def lookup(self, stage: str, key: str) -> Path | None:
        """The entry's folder if it is complete, else None (a damaged entry is removed)."""
        path = self.entry_path(stage, key)
        listing = path / ENTRY_FILE
        try:
            files = json.loads(listing.read_text())["files"]
        except (OSError, ValueError, KeyError):
            if path.exists():
                self._remove(path)
            return None
        for name, size in files.items():
            try:
                if (path / name).stat().st_size != size:
                    raise FileNotFoundError(name)
            except OSError:
                self._remove(path)
                return None
        return path

    @contextlib.contextmanager
    def write(self, stage: str, key: str) -> Iterator[Path]:
        """Yield an empty temporary folder; on success it becomes the entry `stage/key`."""
        stage_dir = self.root / stage
        stage_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_abandoned(stage_dir)
        tmp = stage_dir / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            yield tmp
            files = {
                str(p.relative_to(tmp)): p.stat().st_size
                for p in sorted(tmp.rglob("*"))
                if p.is_file()
            }
            (tmp / ENTRY_FILE).write_text(json.dumps({"key": key, "files": files}, indent=1))
            try:
                os.rename(tmp, stage_dir / key)
            except OSError:
                if self.lookup(stage, key) is None:  # not a concurrent twin: a real failure
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

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
