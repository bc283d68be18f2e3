from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from prefect.states import Failed

from tasks.core.cache import Cache
from tasks.core.download import TransientDownloadError
from tasks.core.errors import DataError
from tasks.houses.prefect_tasks import _retry_only_transient
from tasks.houses.source import resolve_data_source


def test_local_folder_is_used_as_it_is(houses: Path, tmp_path: Path):
    assert resolve_data_source(str(houses), Cache(tmp_path / "cache")) == houses
    with pytest.raises(DataError, match="data folder does not exist"):
        resolve_data_source(str(tmp_path / "nowhere"), Cache(tmp_path / "cache"))


def test_zip_member_escaping_the_folder_is_refused(tmp_path: Path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("../../outside.txt", "x")
        bundle.writestr("HousesInfo.txt", "1 1 1000 90001 100000\n")
    with pytest.raises(DataError, match="would land outside the data folder"):
        resolve_data_source(archive.as_uri(), Cache(tmp_path / "cache"))
    assert not (tmp_path / "outside.txt").exists()
    assert not [p for p in (tmp_path / "cache" / "downloads").iterdir() if not p.name.startswith(".")]


def test_zip_without_attributes_file_is_refused(tmp_path: Path):
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("1_frontal.jpg", "x")
    with pytest.raises(DataError, match="holds no HousesInfo.txt"):
        resolve_data_source(archive.as_uri(), Cache(tmp_path / "cache"))


def test_only_transient_download_problems_are_retried():
    assert _retry_only_transient(None, None, Failed(data=TransientDownloadError("reset", "http://x")))
    assert _retry_only_transient(None, None, Failed(data=ConnectionResetError()))
    assert not _retry_only_transient(None, None, Failed(data=DataError("404", "http://x")))


def test_an_error_about_a_url_shows_the_url_as_given():
    assert str(DataError("cannot download", "http://example.org/a/houses.zip")) == \
        "http://example.org/a/houses.zip: cannot download"
