"""One run at a time on a piece of expensive work (a training, a search point, the colorizer), held while the
work is looked up and, if missing, done. A second run on the same work waits, then finds it done and reuses it.

- Local cache: a lock file beside the cache (`filelock`: POSIX and Windows). The operating system releases a
  lock whose process dies, so a killed run never leaves a stale lock behind.
- Cache on object storage: a lease object (`CACHE/locks/NAME.lock`: its owner and expiry) created with a
  conditional PUT and renewed by a background thread while the work runs. A lease whose owner died is not
  renewed; once it expires, another run takes it over (compare-and-swap on its ETag) and resumes from the
  work's checkpoint on the same storage. `HOUSE_PIPELINE_LEASE_SECONDS` (default 120) is the time a lease
  lives without renewal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from tasks.core import interrupt, storage

Logger = logging.Logger | logging.LoggerAdapter


def lease_seconds() -> float:
    return float(os.environ.get("HOUSE_PIPELINE_LEASE_SECONDS", "120"))


@contextlib.contextmanager
def exclusive(path: Path, what: str, log: Logger) -> Iterator[None]:
    """Hold the lock `path` (a lease when it is in a remote cache's mirror) for the block; say in the log when
    another run holds it first."""
    remote = storage.remote_of(path)
    if remote is not None:
        with Lease(remote, what, log):
            yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except TimeoutError:
        log.info("Another run is computing %s; waiting for it to finish", what)
        while True:  # short waits, so that Ctrl-C is seen
            interrupt.check()
            try:
                lock.acquire(timeout=1)
                break
            except TimeoutError:
                continue
    try:
        yield
    finally:
        lock.release()


class Lease:
    """A lease object on S3-compatible storage: created only if absent, renewed and taken over only with the
    ETag it was last seen with (conditional PUTs), so two machines never both hold it."""

    def __init__(self, url: str, what: str, log: Logger, seconds: float | None = None):
        self.url, self.what, self.log = url, what, log
        self.seconds = seconds or lease_seconds()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.etag: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "what": self.what, "expires": time.time() + self.seconds}).encode()

    def _client(self):
        fs, path = storage.filesystem(self.url)
        bucket, _, key = path.partition("/")
        return fs, bucket, key

    def _head(self) -> tuple[dict, str] | None:
        """(the lease's content, the ETag it had before it was read), or None when there is none."""
        fs, path = storage.filesystem(self.url)
        try:
            etag = fs.info(path, refresh=True)["ETag"]
            return json.loads(fs.cat_file(path)), etag
        except FileNotFoundError:
            return None

    def _put(self, if_match: str | None) -> str | None:
        """PUT the lease, only if absent (if_match None) or unchanged since `if_match`; its new ETag or None."""
        fs, bucket, key = self._client()
        condition = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
        try:
            return fs.call_s3("put_object", Bucket=bucket, Key=key, Body=self._body(), **condition)["ETag"]
        except (OSError, FileExistsError) as error:
            if "pre-conditions" in str(error) or isinstance(error, FileExistsError) or "PreconditionFailed" in str(
                    error) or "ConditionalRequestConflict" in str(error):
                return None
            raise

    def acquire(self) -> None:
        said = False
        while True:
            interrupt.check()
            self.etag = self._put(None)
            if self.etag is not None:
                break
            found = self._head()
            if found is None:
                continue  # released meanwhile
            held, etag = found
            if held["expires"] < time.time():
                self.etag = self._put(etag)
                if self.etag is not None:
                    self.log.warning("The lease on %s of %s expired (its owner stopped renewing it): this run takes "
                                     "the work over", self.what, held["owner"])
                    break
                continue
            if not said:
                self.log.info("Another run (%s) is computing %s; waiting for it to finish (its lease expires in "
                              "%.0f s unless renewed)", held["owner"], self.what, held["expires"] - time.time())
                said = True
            time.sleep(min(2.0, max(0.2, held["expires"] - time.time())))
        self._renewer = threading.Thread(target=self._renew, name="lease-renewal", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 4):
            try:
                etag = self._put(self.etag)
            except Exception as error:  # noqa: BLE001 - the store may be briefly away: try again next time
                self.log.warning("Could not renew the lease on %s (%s)", self.what, type(error).__name__)
                continue
            if etag is None:
                self.log.warning("The lease on %s was taken over by another run", self.what)
                return
            self.etag = etag

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(10)
        found = self._head()
        if found is not None and found[0]["owner"] == self.owner:
            fs, bucket, key = self._client()
            fs.call_s3("delete_object", Bucket=bucket, Key=key)

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
