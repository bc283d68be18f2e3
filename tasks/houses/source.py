"""Where the houses come from: a local Houses-format folder, a folder on object storage
(`s3://bucket/houses`, copied into the local mirror and again only when an object changed: tasks.core.storage),
or a URL of a zip file holding one.

A URL is downloaded once into the cache (`downloads/<sha256 of the URL>/`), with a progress
bar on stderr, checked (a readable zip whose members stay inside the folder and that holds an
attributes file), and unpacked into a temporary folder that is renamed into place only when
complete: an interrupted download or unpacking leaves nothing a later run would trust.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from tasks.core import storage
from tasks.core.cache import Cache
from tasks.core.download import download_file, is_url
from tasks.core.errors import DataError
from tasks.core.hashing import digest
from tasks.houses.ingest import SPACE_SEPARATED_NAME

STAGE = "downloads"


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
    """A local folder as it is; a folder on object storage in its mirror; a URL downloaded and unpacked once
    into the cache."""
    if storage.is_remote(source):
        return storage.fetch_folder(source)
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

