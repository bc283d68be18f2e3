"""A run folder is replaced whole, only by a run that succeeded; write faults are one line naming the place."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.core.errors import DataError
from tasks.core.faults import WriteFailed, device_of, error_number, write_failure, writing
from tasks.core.files import final_path, replacing_run_folder
from tasks.core.paths import check_run_folder


def _earlier_run(folder: Path) -> dict[str, bytes]:
    (folder / "model").mkdir(parents=True)
    (folder / "metrics.json").write_text('{"mape_mean": 20}')
    (folder / "model" / "model.keras").write_bytes(b"weights of the earlier run")
    return _files(folder)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_successful_run_replaces_the_folder_as_a_whole(tmp_path: Path):
    target = tmp_path / "runs" / "train"
    _earlier_run(target)
    with replacing_run_folder(target) as out:
        assert out.name == "train" and out != target and not any(out.iterdir())
        (out / "metrics.json").write_text('{"mape_mean": 18}')
        assert (target / "model").is_dir()  # readers see the earlier run until the swap
    assert _files(target) == {"metrics.json": b'{"mape_mean": 18}'}  # nothing of the earlier run is mixed in
    assert sorted(p.name for p in target.parent.iterdir()) == ["train"]  # no staging or old folder left


@pytest.mark.parametrize("failure", [RuntimeError("a task failed"), KeyboardInterrupt(),
                                     OSError(errno.ENOSPC, "No space left on device")])
def test_a_failed_run_leaves_the_earlier_folder_exactly_as_it_was(tmp_path: Path, failure: BaseException):
    target = tmp_path / "train"
    before = _earlier_run(target)
    with pytest.raises((type(failure), WriteFailed)):
        with replacing_run_folder(target) as out:
            (out / "metrics.json").write_text('{"mape_mean": 99}')
            (out / "plots").mkdir()
            raise failure
    assert _files(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]


def test_a_full_disk_inside_the_run_folder_names_the_option_and_the_device(tmp_path: Path):
    target = tmp_path / "train"
    with pytest.raises(WriteFailed) as raised:
        with replacing_run_folder(target) as out:
            raise OSError(errno.ENOSPC, "No space left on device", str(out / "report.md"))
    assert str(raised.value).startswith(f"no space left on {device_of(tmp_path)} while writing --out {target}:")


def test_a_run_killed_before_its_swap_leaves_nothing_the_next_run_keeps(tmp_path: Path):
    """A killed run's staging folder is removed by the next run; a folder moved aside by a swap that never
    finished goes back into place (the earlier run is never lost)."""
    target = tmp_path / "train"
    before = _earlier_run(target)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f".train.staging-{dead}-abc" / "train").mkdir(parents=True)
    os.rename(target, tmp_path / f".train.old-{dead}-def")  # killed between the swap's two renames
    with pytest.raises(RuntimeError):
        with replacing_run_folder(target):
            raise RuntimeError("this run fails too")
    assert _files(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]


def test_a_subflow_inside_a_staging_folder_writes_in_place_and_final_paths_drop_the_staging_part(tmp_path: Path):
    with replacing_run_folder(tmp_path / "train") as out:
        with replacing_run_folder(out / "preprocess") as inner:
            assert inner == out / "preprocess"
            (inner / "summary.json").write_text("{}")
        assert final_path(inner / "summary.json") == tmp_path / "train" / "preprocess" / "summary.json"
    assert (tmp_path / "train" / "preprocess" / "summary.json").is_file()
    assert final_path(tmp_path / "x" / "y") == tmp_path / "x" / "y"


def test_a_run_never_takes_over_a_folder_of_other_files(tmp_path: Path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"...")
    with pytest.raises(DataError, match=r"holds files that no run wrote \(no run.json\)"):
        check_run_folder("--out", tmp_path / "photos")
    (tmp_path / "empty").mkdir()
    check_run_folder("--out", tmp_path / "empty")
    _earlier_run(tmp_path / "earlier")  # an earlier run's folder (metrics.json) is replaced by the next run
    check_run_folder("--out", tmp_path / "earlier")


def test_write_faults_are_one_line_and_other_errors_pass_through(tmp_path: Path):
    full = write_failure(OSError(errno.ENOSPC, "No space left on device"), "--cache .cache", tmp_path)
    assert isinstance(full, WriteFailed) and full.exit_code == 74 and "\n" not in str(full)
    refused = write_failure(PermissionError(errno.EACCES, "Permission denied", "/srv/x"), "--out /srv/x")
    assert str(refused).startswith("cannot write --out /srv/x (permission denied: /srv/x)")
    assert write_failure(FileNotFoundError(errno.ENOENT, "No such file"), "--out x") is None
    assert error_number(OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")) == 28
    with pytest.raises(FileNotFoundError):  # not a write fault: unchanged
        with writing("--out x", tmp_path):
            raise FileNotFoundError(errno.ENOENT, "No such file", str(tmp_path / "a"))
    with pytest.raises(OSError) as elsewhere:  # a full disk elsewhere is not blamed on this place
        with writing("--out x", tmp_path / "out"):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "cache" / "a"))
    assert not isinstance(elsewhere.value, WriteFailed)
