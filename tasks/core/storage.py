"""Where bytes live: a local folder, or a prefix on an object store (`s3://bucket/prefix`; `gs://`, `az://`
where gcsfs or adlfs is installed), behind one small interface built on fsspec.

The pipeline's code reads and writes local files. A remote location has a local working copy, its mirror,
at `~/.cache/house-pipeline-mirror/SCHEME/BUCKET/PREFIX` (`HOUSE_PIPELINE_MIRROR` moves the root). The
mirror's path names its remote (`remote_of`), on any machine: a path handed to a worker elsewhere maps to
that worker's own mirror (`localized`). The storage layer moves bytes between the two at well-defined
points, always verified by sha256:

- inputs (`fetch_folder`, `fetch_file`): objects are copied into the mirror, and only again when their
  ETag or size changed (a LIST per 1,000 objects on a re-run);
- committed groups of files (cache entries, finished trainings, run folders: `commit`): the data objects
  first, each writer under a prefix of its own, and the manifest last, created only if absent (a
  conditional PUT): the first manifest wins, the loser removes its own objects. A group exists only when its
  manifest exists and every object verifies (`fetch_committed`);
- leases (`tasks.core.locks`): a lease object created with a conditional PUT, renewed and taken over with
  compare-and-swap.

Credentials and endpoints come only from the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE,
AWS_ENDPOINT_URL, ...): never from the command line, parameters, logs or reports. A plain path is used as it
is: nothing here adds work to local runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from tasks.core.errors import DataError
from tasks.core.faults import Unreachable

MIRROR_MARK = "house-pipeline-mirror"
STAGING = ".staging-"  # a run folder is built in `.NAME.staging-PID-RANDOM/NAME` beside it (tasks.core.files)
MANIFEST = "_entry.json"
LOCAL_SCHEMES = ("", "file", "local")
EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", None), "gcs": ("gcsfs", None),
          "az": ("adlfs", None), "abfs": ("adlfs", None)}
log = logging.getLogger(__name__)


def scheme_of(text: str | os.PathLike) -> str:
    text = str(text)
    return text.split("://", 1)[0].lower() if "://" in text else ""


def is_remote(text: str | os.PathLike | None) -> bool:
    """An object-store URL (http(s):// is a download, not a location; file:// is local)."""
    return text is not None and scheme_of(text) not in (*LOCAL_SCHEMES, "http", "https")


def mirror_root() -> Path:
    return Path(os.environ.get("HOUSE_PIPELINE_MIRROR") or Path.home() / ".cache").expanduser() / MIRROR_MARK


def working_path(value: str | os.PathLike) -> Path:
    """The local folder the pipeline works in for a location: the path itself, or a remote's mirror."""
    if isinstance(value, str) and is_remote(value):
        scheme, rest = value.split("://", 1)
        return mirror_root() / scheme.lower() / rest.strip("/")
    if isinstance(value, str) and value.startswith("file://"):
        return Path(value.removeprefix("file://"))
    return Path(value)


def remote_of(path: str | os.PathLike | None) -> str | None:
    """The remote URL a mirror path stands for (None for a plain local path)."""
    if path is None:
        return None
    parts = Path(path).parts
    if MIRROR_MARK not in parts:
        return None
    i = parts.index(MIRROR_MARK)
    if len(parts) < i + 3:
        return None
    return f"{parts[i + 1]}://" + "/".join(parts[i + 2:])


def localized(path: Path) -> Path:
    """A mirror path made on another machine, re-rooted under this machine's mirror (others unchanged)."""
    remote = remote_of(path)
    return working_path(remote) if remote else Path(path)


def final_path(path: Path | str) -> Path:
    """Where a file written into a staging run folder will be once its run succeeds (unchanged otherwise)."""
    parts = list(Path(path).parts)
    kept = [part for i, part in enumerate(parts) if not (
        part.startswith(".") and STAGING in part and i + 1 < len(parts) and part[1:].split(STAGING)[0] == parts[i + 1])]
    return Path(*kept)


def shown(path: str | os.PathLike | None) -> str:
    """How a path is shown to users: where it will be once its run succeeds, as a URL when it is a mirror path."""
    if path is None or (isinstance(path, str) and "://" in path):
        return str(path)
    final = final_path(path)
    return remote_of(final) or str(final)


def join(url: str, *names: str) -> str:
    return "/".join([url.rstrip("/"), *(n.strip("/") for n in names if n)])


def filesystem(url: str):
    """(fsspec filesystem, path within it) for a URL; a scheme with no installed filesystem is one line naming
    what to install."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:
        scheme = scheme_of(url)
        package, extra = EXTRAS.get(scheme, (None, None))
        how = f'pip install "house-pipeline[{extra}]"' if extra else f"pip install {package}" if package else \
            "use s3://, gs:// or az://, or a local path"
        raise DataError(f"{url}: no filesystem for {scheme}:// is installed ({how})") from error


def _bucket_and_key(url: str) -> tuple[str, str]:
    rest = url.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


def problem_with(url: str, write: bool) -> str | None:
    """Why the location cannot be used now (bucket missing, no credentials, access denied, endpoint
    unreachable), checked with one request (two more to probe a write); None when it can."""
    fs, path = filesystem(url)
    bucket, _ = _bucket_and_key(url)
    try:
        try:
            fs.ls(bucket, refresh=True)
        except FileNotFoundError:
            return f"the bucket {bucket!r} does not exist (create it, or fix the URL)"
        if write:
            probe = join(path, f".house-pipeline-probe-{uuid.uuid4().hex}")
            fs.pipe_file(probe, b"")
            fs.rm_file(probe)
        return None
    except PermissionError:
        return "access denied (check the credentials' permissions on the bucket)"
    except Exception as error:  # noqa: BLE001 - botocore's and aiohttp's errors, named by kind below
        return _named(error)


def _named(error: BaseException) -> str:
    kind, text = type(error).__name__, str(error)
    if kind in ("NoCredentialsError", "PartialCredentialsError") or "Unable to locate credentials" in text:
        return "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, in the environment"
    if "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text or "AccessDenied" in text:
        return "access denied (check the credentials in the environment and their permissions on the bucket)"
    if kind in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionError",
                "ServerTimeoutError") or "Could not connect" in text or "Connect call failed" in text:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or "the object store's endpoint"
        return f"UNREACHABLE{endpoint} does not answer ({kind})"
    return f"{kind}: {text.splitlines()[0] if text else ''}"


def check_location(option: str, url: str, write: bool = False) -> None:
    """One line before any work when a remote location cannot be used (DataError, or Unreachable when the
    endpoint does not answer)."""
    problem = problem_with(url, write)
    if problem is None:
        return
    if problem.startswith("UNREACHABLE"):
        raise Unreachable(f"{option} {url}: {problem.removeprefix('UNREACHABLE')}; start it or fix "
                          "AWS_ENDPOINT_URL")
    raise DataError(f"{option} {url}: {problem}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- small objects ----------------------------------------------------------------------------------------

def read_bytes(url: str) -> bytes | None:
    """An object's bytes, or None when it does not exist."""
    fs, path = filesystem(url)
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None


def create(url: str, data: bytes) -> bool:
    """Write an object only if none exists (a conditional PUT); False when one did (another writer won)."""
    fs, path = filesystem(url)
    try:
        fs.pipe_file(path, data, mode="create")
        return True
    except FileExistsError:
        return False


def remove(urls: Iterable[str]) -> None:
    urls = list(urls)
    if urls:
        fs, _ = filesystem(urls[0])
        fs.rm([filesystem(u)[1] for u in urls])


def listing(url: str) -> dict[str, dict]:
    """{relative name: {"size", "etag"}} of every object under a prefix (one LIST per 1,000 objects)."""
    fs, path = filesystem(url)
    fs.invalidate_cache(path)  # another machine's writes since the last listing count
    found = {}
    try:
        for name, info in fs.find(path, detail=True).items():
            if info.get("type") == "file":
                found[name[len(path.rstrip("/")) + 1:]] = {"size": info.get("size"),
                                                            "etag": str(info.get("ETag", info.get("etag", "")))}
    except FileNotFoundError:
        pass
    return found


# --- inputs: copied into the mirror, again only when changed ------------------------------------------------

def fetch_folder(url: str) -> Path:
    """The mirror of every object under `url`, brought up to date (objects whose ETag or size changed are
    downloaded again; objects gone from the store are removed from the mirror). Its local folder."""
    local = working_path(url)
    seen_file = local / ".house-pipeline-etags.json"
    try:
        seen = json.loads(seen_file.read_text())
    except (OSError, ValueError):
        seen = {}
    objects = listing(url)
    if not objects:
        raise DataError("no such folder (no objects under this prefix)", url)
    fs, _ = filesystem(url)
    changed = [name for name, info in objects.items()
               if seen.get(name) != info or not (local / name).is_file()]
    if changed:
        log.info("Downloading %d of %d objects from %s", len(changed), len(objects), url)
        fs.get([filesystem(join(url, n))[1] for n in changed], [str(local / n) for n in changed])
    for name in set(seen) - set(objects):
        (local / name).unlink(missing_ok=True)
    local.mkdir(parents=True, exist_ok=True)
    seen_file.write_text(json.dumps(objects))
    return local


def fetch_files(url: str, names: Iterable[str]) -> Path:
    """The named objects under `url` that its mirror lacks, downloaded (a worker on another machine fetching
    the inputs of its share of the work); the mirror folder."""
    local = working_path(url)
    missing = [name for name in dict.fromkeys(names) if not (local / name).is_file()]
    if missing:
        fs, _ = filesystem(url)
        fs.get([filesystem(join(url, n))[1] for n in missing], [str(local / n) for n in missing])
    return local


def fetch_file(url: str) -> Path:
    """The mirror of one object (downloaded again only when changed)."""
    parent, _, name = url.rstrip("/").rpartition("/")
    fs, path = filesystem(url)
    fs.invalidate_cache(path)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise DataError("no such file", url) from None
    if info.get("type") != "file":
        raise DataError("is a folder, not a file", url)
    local = working_path(url)
    stamp = local.with_name(f".{local.name}.etag")
    etag = f"{info.get('ETag', '')}:{info.get('size')}"
    if not local.is_file() or not stamp.is_file() or stamp.read_text() != etag:
        local.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(path, str(local))
        stamp.write_text(etag)
    return local


# --- committed groups of files: objects first, manifest last, first manifest wins ---------------------------

def manifest_of(folder: Path, files: Iterable[str]) -> dict[str, dict]:
    return {name: {"size": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)}
            for name in sorted(files)}


def commit(folder: Path, url: str, files: dict[str, dict], manifest: dict, manifest_name: str = MANIFEST,
           replace: bool = False) -> bool:
    """Upload the local `folder`'s `files` ({name: {size, sha256}}) under `url`, in a prefix of this writer's,
    then the manifest (`manifest` plus the writer and the files) last. Only one manifest is ever created
    (a conditional PUT): when another writer's came first, this writer's objects are removed and False is
    returned. `replace` (a refreshed entry): the old manifest goes first, then its objects after the new one."""
    writer = f"w-{uuid.uuid4().hex[:16]}"
    fs, path = filesystem(url)
    old = _read_manifest(url, manifest_name) if replace else None
    local = [str(folder / name) for name in files]
    remote = [filesystem(join(url, writer, name))[1] for name in files]
    if local:
        fs.put(local, remote)
    body = json.dumps({**manifest, "writer": writer, "files": files}, indent=1).encode()
    if replace and old is not None:
        fs.rm_file(filesystem(join(url, manifest_name))[1])
    if create(join(url, manifest_name), body):
        if old is not None and old.get("writer") and old["writer"] != writer:
            _remove_writer(url, old["writer"])
        return True
    _remove_writer(url, writer)
    return False


def _remove_writer(url: str, writer: str) -> None:
    fs, _ = filesystem(url)
    try:
        fs.rm(filesystem(join(url, writer))[1], recursive=True)
    except FileNotFoundError:
        pass


def _read_manifest(url: str, manifest_name: str = MANIFEST) -> dict | None:
    data = read_bytes(join(url, manifest_name))
    if data is None:
        return None
    try:
        found = json.loads(data)
        dict(found["files"])
        return found
    except (ValueError, KeyError, TypeError):
        return {"files": {}, "unreadable": True}


def fetch_committed(url: str, folder: Path, manifest_name: str = MANIFEST) -> tuple[dict | None, str | None]:
    """Bring a committed group into the local `folder` (only files missing or different there are
    downloaded): (its manifest, None); (None, None) when none is committed; (None, why) when it is damaged
    (an unreadable manifest, an object missing or changed): then it is removed from the store, so that it is
    rebuilt."""
    manifest = _read_manifest(url, manifest_name)
    if manifest is None:
        return None, None
    if manifest.get("unreadable") or "writer" not in manifest:
        problem = f"its {manifest_name} is unreadable"
    else:
        problem = _download_verified(url, folder, manifest)
    if problem is None:
        return manifest, None
    forget(url, manifest, manifest_name)
    return None, problem


def _download_verified(url: str, folder: Path, manifest: dict) -> str | None:
    fs, _ = filesystem(url)
    wanted = [name for name, item in manifest["files"].items()
              if not ((folder / name).is_file() and (folder / name).stat().st_size == item["size"]
                      and sha256_file(folder / name) == item["sha256"])]
    if wanted:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".download-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            try:
                fs.get([filesystem(join(url, manifest["writer"], n))[1] for n in wanted],
                       [str(tmp / n) for n in wanted])
            except FileNotFoundError:
                return "an object is missing"
            for name in wanted:
                item = manifest["files"][name]
                got = tmp / name
                if not got.is_file() or got.stat().st_size != item["size"]:
                    return f"{name} has {got.stat().st_size if got.is_file() else 0} bytes, {item['size']} were written"
                if sha256_file(got) != item["sha256"]:
                    return f"{name} changed since it was written (sha256 differs)"
            for name in wanted:
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / name, folder / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return None


def forget(url: str, manifest: dict | None = None, manifest_name: str = MANIFEST) -> None:
    """Remove a committed group from the store: the manifest first (readers stop trusting it), then its
    objects."""
    fs, path = filesystem(url)
    manifest = manifest if manifest is not None else _read_manifest(url, manifest_name)
    try:
        fs.rm_file(filesystem(join(url, manifest_name))[1])
    except FileNotFoundError:
        pass
    if manifest and manifest.get("writer"):
        _remove_writer(url, manifest["writer"])


# --- run folders on object storage -------------------------------------------------------------------------

def publish_folder(folder: Path, url: str) -> None:
    """Replace the objects under `url` by the files of the local `folder` (a finished run): the old listing
    goes first, so readers stop trusting the old run; then the files at their own names; the old run's other
    objects are removed; `_entry.json` (each file's size and sha256) comes last. A run folder on object
    storage is complete exactly when its `_entry.json` is there and verifies."""
    names = [str(p.relative_to(folder)) for p in sorted(folder.rglob("*")) if p.is_file()]
    files = manifest_of(folder, names)
    fs, _ = filesystem(url)
    before = listing(url)
    if MANIFEST in before:
        fs.rm_file(filesystem(join(url, MANIFEST))[1])
    if names:
        fs.put([str(folder / n) for n in names], [filesystem(join(url, n))[1] for n in names])
    remove(join(url, n) for n in set(before) - set(names) - {MANIFEST})
    fs.pipe_file(filesystem(join(url, MANIFEST))[1], json.dumps({"files": files}, indent=1).encode())
