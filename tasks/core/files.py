"""Atomic writes: a reader sees the old file (or folder) or the new one, never a partial one.

Everything a reader may see (reports, models, CSV, JSON, plots, checkpoints) is written through
here: into a temporary name in the same folder, then renamed into place in one step. A run folder
(`--out`) is built whole in a staging folder beside it and replaces the earlier run's folder only when
the run succeeds (`replacing_run_folder`): a full disk, a refused write or a kill leave the earlier
run's files exactly as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from tasks.core.faults import writing
from tasks.core.storage import STAGING, final_path, publish_folder, remote_of, shown


def temporary_sibling(path: Path) -> Path:
    """A hidden name beside `path`, unique to this process and call, with the same suffix."""
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write `path` to (by any library); renamed into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, value: object) -> Path:
    return atomic_write_bytes(path, (json.dumps(value, indent=2, default=str) + "\n").encode())


def atomic_copy(source: Path, target: Path) -> Path:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target


@contextlib.contextmanager
def replacing_folder(target: Path) -> Iterator[Path]:
    """Yield an empty sibling folder to fill; on success it replaces `target` as a whole."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    tmp.mkdir(parents=True)
    try:
        yield tmp
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:12]}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(target, old)  # out of sight in one step; the new folder takes its place
        os.rename(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _pid_of(name: str) -> int | None:
    try:
        return int(name.rsplit("-", 2)[-2])
    except (IndexError, ValueError):
        return None


def _alive(pid: int | None) -> bool:
    if pid is None or pid == os.getpid():
        return pid is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_abandoned_runs(target: Path) -> None:
    """Clean up after runs that were killed: their staging folders go; a folder moved aside for a swap that
    never finished goes back into place."""
    for leftover in target.parent.glob(f".{target.name}.*-*-*"):
        kind = leftover.name[len(target.name) + 2:].split("-", 1)[0]
        if kind not in ("staging", "old") or _alive(_pid_of(leftover.name)):
            continue
        if kind == "old" and not target.exists():
            os.rename(leftover, target)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(new: Path, target: Path) -> None:
    """`new` takes `target`'s place; the earlier folder is moved aside in one rename and then removed."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        os.rename(target, old)
    except FileNotFoundError:
        old = None
    try:
        os.rename(new, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def replacing_run_folder(target: Path, option: str = "--out") -> Iterator[Path]:
    """Yield a new, empty folder named like `target`, inside a hidden staging folder beside it
    (`.NAME.staging-PID-RANDOM/NAME`, so the run's name stays its folder's name). When the block succeeds it
    replaces `target` as a whole; when it fails (an error, a full disk, Ctrl-C) it is removed and `target` is
    exactly as it was. A full disk or a refused write there is one line naming `option` (tasks.core.faults).
    A folder inside another run's staging folder (a subflow's) is written in place: it is swapped with it."""
    target = Path(target)
    if final_path(target) != target:
        target.mkdir(parents=True, exist_ok=True)
        yield target
        return
    what, remote = f"{option} {shown(target)}", remote_of(target)
    with writing(what, target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        _sweep_abandoned_runs(target)
        staging = target.parent / f".{target.name}{STAGING}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        (staging / target.name).mkdir(parents=True)
    try:
        with writing(what, staging):
            yield staging / target.name
        if remote is not None:  # on object storage: objects first, the listing last (no rename there)
            publish_folder(staging / target.name, remote)
        with writing(what, target.parent):
            _swap_in(staging / target.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
