"""Data sources: a local Houses-format folder, or a URL of a zip file holding one.

A URL is downloaded once into the cache (`downloads/<sha256 of the URL>/`), with a progress
bar on stderr, checked (a readable zip whose members stay inside the folder and that holds an
attributes file), and unpacked into a temporary folder that is renamed into place only when
complete: an interrupted download or unpacking leaves nothing a later run would trust.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tasks.cache import Cache
from tasks.errors import DataError
from tasks.hashing import digest
from tasks.ingest import SPACE_SEPARATED_NAME

STAGE = "downloads"
CHUNK = 1 << 20


class TransientDownloadError(DataError):
    """A download that may work when tried again (network trouble, server error)."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "file://"))


def download_file(url: str, target: Path, timeout: float) -> None:
    try:
        response = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as error:
        problem = DataError if error.code < 500 else TransientDownloadError
        raise problem(f"cannot download: {error}; check the URL", url) from None
    except (urllib.error.URLError, OSError) as error:
        raise TransientDownloadError(f"cannot download: {error}; check the URL and the network", url) from None
    total = int(response.headers.get("Content-Length") or 0)
    done = 0
    with response, open(target, "wb") as handle:
        while chunk := response.read(CHUNK):
            handle.write(chunk)
            done += len(chunk)
            _progress(url, done, total)
    print(file=sys.stderr)
    if total and done != total:
        raise TransientDownloadError(f"download ended after {done} of {total} bytes; try again", url)


def _progress(url: str, done: int, total: int) -> None:
    name = url.rsplit("/", 1)[-1]
    if total:
        width = 30
        filled = int(width * done / total)
        bar = "#" * filled + "-" * (width - filled)
        print(f"\rDownloading {name} [{bar}] {done / 2**20:.1f}/{total / 2**20:.1f} MiB",
              end="", file=sys.stderr, flush=True)
    else:
        print(f"\rDownloading {name} {done / 2**20:.1f} MiB", end="", file=sys.stderr, flush=True)


def _unpack(archive: Path, url: str, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as bundle:
            broken = bundle.testzip()
            if broken:
                raise DataError(f"zip member {broken} is corrupt; the download is damaged", url)
            for name in bundle.namelist():
                member = PurePosixPath(name)
                if member.is_absolute() or ".." in member.parts:
                    raise DataError(f"zip member {name!r} would land outside the data folder", url)
            bundle.extractall(target)
    except zipfile.BadZipFile:
        raise DataError("not a zip file; the URL must point to a zip of a Houses-format folder", url) from None


def dataset_root(folder: Path, origin: str) -> Path:
    """The folder inside an unpacked zip that holds the attributes file."""
    for candidate in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        if (candidate / SPACE_SEPARATED_NAME).is_file() or any(candidate.glob("*.csv")):
            return candidate
    raise DataError(f"the zip holds no {SPACE_SEPARATED_NAME} or .csv attributes file", origin)


def resolve_data_source(source: str, cache: Cache, timeout: float = 60.0) -> Path:
    """A local folder as it is; a URL downloaded and unpacked once into the cache."""
    if not is_url(source):
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise DataError("data folder does not exist; pass --data with a Houses-format folder "
                            "or a URL of a zip of one", folder)
        return folder
    key = digest(STAGE, source)
    entry = cache.lookup(STAGE, key)
    if entry is None:
        with cache.write(STAGE, key) as tmp:
            archive = tmp / "download.zip"
            try:
                download_file(source, archive, timeout)
                _unpack(archive, source, tmp / "data")
            finally:
                archive.unlink(missing_ok=True)
            dataset_root(tmp / "data", source)
        entry = cache.entry_path(STAGE, key)
    return dataset_root(entry / "data", source)

