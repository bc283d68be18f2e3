"""The package as a user gets it: the wheel built, installed with the hashed lock into a fresh virtual
environment, and the `house-pipeline` command run from a folder that is not the checkout."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
LOCK_INSTALL = "--no-deps --require-hashes -r"  # as the README and the Makefile say


def _pip(python: Path, *args: str) -> None:
    result = subprocess.run([str(python), "-m", "pip", *args], capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"pip {' '.join(args)}: exit {result.returncode}\n{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh virtual environment: the lock installed with hash checking, then the wheel without deps."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"  # a copy: a build writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("flows", "tasks"):  # copytree follows links: tasks/houses/sample becomes the data itself
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    start = time.perf_counter()
    # The pip the new venv came with, never upgraded, and the README's command: the lock as it is, no resolver.
    _pip(python, "install", "--quiet", *LOCK_INSTALL.split(), str(ROOT / "requirements.lock"))
    _pip(python, "check")
    print(f"hashed lock installed in {time.perf_counter() - start:.0f} s")
    _pip(python, "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(source), "-w", str(root / "dist"))
    (wheel,) = (root / "dist").glob("house_pipeline-*.whl")
    _pip(python, "install", "--quiet", "--no-deps", str(wheel))
    return venv


@pytest.fixture
def house_pipeline(venv: Path, tmp_path: Path):
    """Run the installed command in `tmp_path/work` (not the checkout), with nothing set that points at it."""
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PREFECT_API_URL"} and not k.startswith("HOUSE_PIPELINE_")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               TF_CPP_MIN_LOG_LEVEL="2", PATH=f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}")

    def run(*args: str, command: str = "house-pipeline") -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / command), *args], cwd=work, env=env, capture_output=True,
                              text=True, timeout=600)

    run.work = work
    return run


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_the_installed_command_runs_the_pipeline_from_another_folder(house_pipeline, venv: Path):
    work = house_pipeline.work
    help_ = house_pipeline("--help")
    assert help_.returncode == 0, help_.stderr
    assert help_.stdout.startswith("usage: house-pipeline")
    assert all(name in help_.stdout for name in ("preprocess", "train", "sweep", "serve", "sample-data"))

    version = house_pipeline("--version")
    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version.returncode == 0 and version.stdout.strip() == f"house-pipeline {expected}"

    # Before the sample is written, the default data is missing: one line saying how to get it.
    assert "house-pipeline sample-data data/houses" in _one_line_error(house_pipeline("preprocess"))
    # serve looks for prefect.yaml here and says so.
    assert f"looked for {work / 'prefect.yaml'}" in _one_line_error(house_pipeline("serve"))

    sample = house_pipeline("sample-data")
    assert sample.returncode == 0, sample.stderr
    assert len((work / "data" / "houses" / "HousesInfo.txt").read_text().splitlines()) == 535

    preprocess = house_pipeline("preprocess", "--out", "runs/preprocess")
    assert preprocess.returncode == 0, preprocess.stderr[-3000:]
    summary = json.loads((work / "runs" / "preprocess" / "summary.json").read_text())
    assert (summary["houses_read"], summary["houses_kept"], summary["train"], summary["test"]) == (535, 358, 269, 89)
    assert summary["parameters"]["data"] == "data/houses"  # the default, read relative to the working directory
    assert (work / summary["dataset"]).is_dir() and summary["dataset"].startswith(".cache/")

    train = house_pipeline("train", "--strategy", "mlp", "--epochs", "2", "--out", "runs/train")
    assert train.returncode == 0, train.stderr[-3000:]
    assert "Test MAPE" in train.stdout
    metrics = json.loads((work / "runs" / "train" / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["epochs"], metrics["n_test"]) == ("mlp", 2, 89)
    assert math.isfinite(metrics["mape_mean"]) and metrics["mape_mean"] > 0
    assert (work / "runs" / "train" / "model" / "model.keras").is_file()

    installed = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert (installed / "tasks" / "houses" / "sample" / "HousesInfo.txt").is_file()  # shipped in the wheel
    assert not [p for p in (installed / "tasks").rglob("*") if p.name in {".cache", "runs", ".house-pipeline"}]


def test_a_missing_extra_names_the_install_command(house_pipeline, venv: Path):
    _pip(venv / "bin" / "python", "uninstall", "--quiet", "--yes", "distributed", "prefect-dask", "onnx")
    # The base install still imports every flow.
    imports = house_pipeline("-c", "import flows.__main__, flows.train, flows.sweep, flows.dnn, flows.classify",
                             command="python")
    assert imports.returncode == 0, imports.stderr[-2000:]

    assert 'pip install "house-pipeline[dask]"' in _one_line_error(house_pipeline("sweep", "--workers", "2"))
    assert 'pip install "house-pipeline[dnn]"' in _one_line_error(house_pipeline("models", "toy", "sepia", "x.onnx"))
    _pip(venv / "bin" / "python", "uninstall", "--quiet", "--yes", "autokeras")
    line = _one_line_error(house_pipeline("sweep", "--budgets", "60s"))
    assert line.endswith('(not installed: autokeras): pip install "house-pipeline[automl]"'), line
    assert not (house_pipeline.work / "runs").exists()  # refused before any work
