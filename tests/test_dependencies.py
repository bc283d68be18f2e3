"""pyproject.toml gives ranges, requirements.lock pins the set within them with hashes, and that
set runs a real AutoKeras regression search (the reason keras stays at 3.10: AutoKeras 3.0.0's
regression head fails with keras >= 3.12)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

# The platform requirements.lock is made for (`make lock`): CPython 3.11 on x86_64 Linux.
LOCK_PLATFORM = {"platform_machine": "x86_64", "sys_platform": "linux", "platform_system": "Linux",
                 "python_version": "3.11", "python_full_version": "3.11.7", "implementation_name": "cpython"}


def _locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of every entry of requirements.lock."""
    entries, name = {}, None
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line):
            name = canonicalize_name(match[1])
            entries[name] = (match[2], 0)
        elif "--hash=sha256:" in line and name is not None:
            entries[name] = (entries[name][0], entries[name][1] + 1)
    return entries


def _requirements() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {"": [Requirement(r) for r in project["dependencies"]],
            **{extra: [Requirement(r) for r in rs] for extra, rs in project["optional-dependencies"].items()}}


def test_pyproject_gives_ranges_and_the_lock_pins_each_within_its_range_with_hashes():
    locked = _locked()
    assert len(locked) > 100 and all(hashes for _, hashes in locked.values())
    for extra, requirements in _requirements().items():
        for requirement in requirements:
            assert "==" not in str(requirement.specifier), f"{requirement}: give a range, the lock pins"
            if requirement.marker is not None and not requirement.marker.evaluate(LOCK_PLATFORM):
                continue  # tensorflow on macOS arm64 / Linux aarch64
            version, _ = locked[canonicalize_name(requirement.name)]  # every extra is locked too
            assert requirement.specifier.contains(version), f"[{extra}] {requirement}: locked {version}"


def test_the_environment_is_the_locked_set():
    locked = _locked()
    for requirements in _requirements().values():
        for requirement in requirements:
            if requirement.marker is None or requirement.marker.evaluate():
                name = canonicalize_name(requirement.name)
                assert importlib.metadata.version(requirement.name) == locked[name][0], requirement.name


def test_tensorflow_cpu_where_it_has_wheels_tensorflow_elsewhere():
    def tensorflow(machine: str) -> list[str]:
        return [r.name for r in _requirements()[""] if r.name.startswith("tensorflow")
                and r.marker.evaluate({**LOCK_PLATFORM, "platform_machine": machine})]

    assert tensorflow("x86_64") == tensorflow("AMD64") == ["tensorflow-cpu"]
    assert tensorflow("arm64") == tensorflow("aarch64") == ["tensorflow"]


@pytest.mark.slow
def test_pinned_set_runs_an_autokeras_regression_search(tmp_path: Path):
    import autokeras as ak
    import keras

    rng = np.random.default_rng(0)
    x = rng.random((64, 5)).astype("float32")
    y = x.sum(axis=1)
    regressor = ak.StructuredDataRegressor(max_trials=1, overwrite=True, directory=str(tmp_path), seed=1)
    regressor.fit(x, y, epochs=1, verbose=0)
    model = regressor.export_model()
    model.save(tmp_path / "best.keras")
    loaded = keras.models.load_model(tmp_path / "best.keras", custom_objects=ak.CUSTOM_OBJECTS, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), rtol=1e-5)
    assert keras.__version__ == "3.10.0"


def test_the_lock_is_complete_so_installing_it_without_the_resolver_is_safe():
    """`pip install --no-deps` installs exactly the lock: every requirement of every locked package (its
    markers and requested extras evaluated for the lock's platform) must itself be locked, within range."""
    locked = _locked()
    seen: set[tuple[str, str]] = set()
    todo = [(requirement, "") for requirements in _requirements().values() for requirement in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({**LOCK_PLATFORM, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} (needed{' by ' + extra if extra else ''}) is not in requirements.lock"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), f"{requirement}: locked {version}"
        for wanted in {""} | set(requirement.extras):
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            todo += [(Requirement(r), wanted) for r in importlib.metadata.requires(name) or []]
    assert len({name for name, _ in seen}) > 100


def test_every_install_command_installs_the_lock_without_the_resolver():
    command = "pip install --no-deps --require-hashes -r requirements.lock"
    assert command in " ".join((ROOT / "README.md").read_text().split())
    assert "LOCK_INSTALL = --no-deps --require-hashes -r requirements.lock" in (ROOT / "Makefile").read_text()
    assert "--upgrade pip" not in (ROOT / "Makefile").read_text()  # the venv's own pip, as users have it
    assert 'LOCK_INSTALL = "--no-deps --require-hashes -r"' in (ROOT / "tests" / "test_install.py").read_text()
