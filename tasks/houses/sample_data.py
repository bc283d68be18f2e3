"""The compact Houses sample that ships with the package (535 houses, photos at most 160 px, 18 MB):
`house-pipeline sample-data DIR` copies it out, so that a run never reads from the installed package.

In a checkout, `tasks/houses/sample` is a link to `data/houses`; in a wheel it is that folder's copy."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from tasks.core.errors import DataError
from tasks.core.files import replacing_folder


def sample_folder() -> Path:
    """The installed sample's folder."""
    folder = Path(str(resources.files("tasks.houses") / "sample"))
    if not (folder / "HousesInfo.txt").is_file():
        raise DataError("the sample data is not installed with this package; reinstall house-pipeline from a "
                        "wheel or a checkout", folder)
    return folder


def write_sample(target: Path) -> int:
    """Copy the sample into `target` (a new or empty folder), atomically; the number of files."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError("already exists and is not an empty folder; choose a new one", target)
    source = sample_folder()
    files = sorted(p for p in source.iterdir() if p.is_file())
    with replacing_folder(target) as tmp:
        for path in files:
            shutil.copyfile(path, tmp / path.name)
    return len(files)
