"""Prefect's cache on the project's content keys, so that the UI shows a reuse as `Cached`.

`ContentKey` is a Prefect `CachePolicy` whose key is the stage's own content key (input content,
options, code version). It claims a hit only while the stage's cache entry is complete and verified
(`Cache.lookup`, a finished training's checked model): when the entry is missing or damaged it first
deletes Prefect's result record for that key, so the task runs again and rebuilds the entry.

Results are written as plain JSON (`PlainJSON`) under `CACHE/prefect-results/` (`with_results_in`), so
deleting the cache folder clears both. Reading them back never imports or runs anything a file
names: only JSON values, paths, tuples and the dataclasses registered with `@cacheable`.

A result read back is a reuse by definition: a registered class's optional `replayed()` method turns
per-run facts (entries built in this run) into reuse, so a second run never repeats the first
run's "built" counts. `refreshing()` says whether this run forces recomputation (`--refresh-cache`,
Prefect's `refresh_cache` / `PREFECT_TASKS_REFRESH_CACHE`), so the stages skip their own reuse too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.serializers import Serializer
from prefect.settings import PREFECT_TASKS_REFRESH_CACHE

from tasks.core import storage
from tasks.core.errors import DataError

RESULTS_FOLDER = "prefect-results"
SERIALIZER = "house-pipeline-json"
log = logging.getLogger(__name__)

CACHEABLE: dict[str, type] = {}


def cacheable(cls: type) -> type:
    """Allow a dataclass in cached task results (by its class name, never by an import path)."""
    CACHEABLE[cls.__name__] = cls
    return cls


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("cached results may only have dicts with string keys")
        return {k: _encode(v) for k, v in value.items()}
    name = type(value).__name__
    if isinstance(value, BaseException):  # a failed task's error, which Prefect persists too: its words only
        return {"__error__": {"data_error": isinstance(value, DataError), "message": str(value)}}
    if dataclasses.is_dataclass(value) and CACHEABLE.get(name) is type(value):
        return {"__type__": name, "fields": {f.name: _encode(getattr(value, f.name))
                                              for f in dataclasses.fields(value)}}
    raise TypeError(f"{name} is not allowed in a cached result (register it with @cacheable)")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"__path__"}:
        return Path(value["__path__"])
    if set(value) == {"__tuple__"}:
        return tuple(_decode(v) for v in value["__tuple__"])
    if set(value) == {"__error__"}:
        error = value["__error__"]
        return (DataError if error.get("data_error") else RuntimeError)(str(error.get("message", "")))
    if set(value) == {"__type__", "fields"}:
        cls = CACHEABLE.get(value["__type__"])
        if cls is None:
            raise ValueError(f"a cached result names an unknown type {value['__type__']!r}")
        obj = cls(**{k: _decode(v) for k, v in value["fields"].items()})
        return obj.replayed() if hasattr(obj, "replayed") else obj
    return {k: _decode(v) for k, v in value.items()}


class PlainJSON(Serializer):
    """JSON with an allow-list of types: no pickle, no import by name."""

    type: Literal["house-pipeline-json"] = SERIALIZER

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(_encode(obj)).encode()

    def loads(self, blob: bytes) -> Any:
        return _decode(json.loads(blob))


def _record_path(result_storage: Any, key: str) -> Path | str | None:
    """The record's local path, or its URL when the results are on object storage."""
    basepath = getattr(result_storage, "basepath", None)
    if basepath is None:
        return None
    return storage.join(str(basepath), key) if "://" in str(basepath) else Path(basepath).expanduser() / key


def _record_bytes(record: Path | str) -> bytes | None:
    if isinstance(record, str):
        return storage.read_bytes(record)
    try:
        return record.read_bytes()
    except OSError:
        return None


def _forget_record(record: Path | str) -> None:
    if isinstance(record, str):
        if storage.read_bytes(record) is not None:
            storage.remove([record])
    else:
        record.unlink(missing_ok=True)


def _readable_record(record: Path | str) -> bool:
    """A record written by PlainJSON; anything else (another serializer, a broken file) is not read."""
    try:
        return json.loads(_record_bytes(record))["metadata"]["serializer"]["type"] == SERIALIZER
    except (ValueError, KeyError, TypeError):
        return False


@dataclass
class ContentKey(CachePolicy):
    """Key: `entry(inputs)` -> (the stage's content key, whether its entry is complete and verified)."""

    entry: Callable[[dict[str, Any]], tuple[str, bool]] | None = None

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        try:
            key, complete = self.entry(inputs)
        except Exception as error:  # bad input: the task itself runs and says what is wrong
            log.debug("No cache key for %s: %s", task_ctx.task.name, error)
            return None
        record = _record_path(task_ctx.result_store.result_storage, key)
        if record is None:  # storage without a basepath: cannot forget a stale record, so never claim a hit
            return None
        if not complete or not _readable_record(record):
            _forget_record(record)
        return key


def with_results_in(task: Any, cache_dir: Path, refresh: bool = False) -> Any:
    """The task with its results stored under the cache folder (call sites know the folder); `refresh`
    (--refresh-cache) sets Prefect's refresh_cache, so it runs and `refreshing()` is true inside. A cache on
    object storage keeps them there too, through a saved RemoteFileSystem block (its endpoint and
    credentials come from the environment, never from the block), so any worker sees them."""
    remote = storage.remote_of(cache_dir)
    where = results_block(storage.join(remote, RESULTS_FOLDER)) if remote else \
        Path(cache_dir).resolve() / RESULTS_FOLDER
    return task.with_options(result_storage=where, refresh_cache=True if refresh else None)


def results_block(basepath: str) -> str:
    """The slug of a saved RemoteFileSystem block for `basepath` (saved once per process and API)."""
    from prefect.filesystems import RemoteFileSystem
    from prefect.settings import PREFECT_API_URL

    name = "house-pipeline-results-" + hashlib.sha256(basepath.encode()).hexdigest()[:12]
    if (PREFECT_API_URL.value(), name) not in _SAVED_BLOCKS:
        RemoteFileSystem(basepath=basepath, settings={}).save(name, overwrite=True)
        _SAVED_BLOCKS.add((PREFECT_API_URL.value(), name))
    return f"remote-file-system/{name}"


_SAVED_BLOCKS: set[tuple[str | None, str]] = set()  # blocks saved by this process


def cached(name: str, entry: Callable[[dict[str, Any]], tuple[str, bool]]) -> dict[str, Any]:
    """The `@task` options of a task cached on a content key."""
    return {"name": name, "cache_policy": ContentKey(entry=entry), "result_serializer": PlainJSON(),
            "persist_result": True}


def refreshing() -> bool:
    """True when this task run must recompute rather than reuse (Prefect's refresh_cache)."""
    context = TaskRunContext.get()
    flag = context.task.refresh_cache if context is not None else None
    return bool(PREFECT_TASKS_REFRESH_CACHE.value() if flag is None else flag)
