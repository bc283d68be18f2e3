"""The folder tree is the architecture: imports point down only (flows -> capability packages ->
training, houses -> core), capability packages do not import each other, flows hold no tasks, and
importing the code does no work (no warning filters, no matplotlib backend chosen)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYERS = {
    "core": {"core"},
    "houses": {"core", "houses"},
    "training": {"core", "training"},
    "price": {"core", "houses", "training", "price"},
    "classify": {"core", "houses", "training", "classify"},
    "automl": {"core", "houses", "training", "price", "automl"},  # its searches start from the hand-built model
    "dnn": {"core", "training", "dnn"},
    "lifecycle": {"core", "houses", "training", "price", "lifecycle"},  # above the price models it registers
}


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module imported anywhere in the file (top level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_tasks_are_packages_only():
    flat = [p.name for p in (ROOT / "tasks").glob("*.py") if p.name != "__init__.py"]
    assert flat == [], "every module of tasks/ belongs to a capability package"
    assert {p.name for p in (ROOT / "tasks").iterdir() if p.is_dir() and p.name != "__pycache__"} == set(LAYERS)


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_a_package_imports_only_what_is_below_it(package):
    wrong = []
    for path in _modules(f"tasks/{package}"):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "flows" or (parts[0] == "tasks" and len(parts) > 1 and parts[1] not in LAYERS[package]):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_product_code_does_not_import_the_toy_networks():
    users = [str(p.relative_to(ROOT)) for folder in ("tasks", "flows") for p in _modules(folder)
             if any(n.startswith("tasks.dnn.toy_networks") for n in _imports(p))]
    assert users == ["flows/__main__.py"]  # only the `models toy` command writes them


def test_flows_hold_no_tasks():
    for path in _modules("flows"):
        tree = ast.parse(path.read_text())
        decorators = [d for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) for d in node.decorator_list]
        names = {(d.func if isinstance(d, ast.Call) else d) for d in decorators}
        assert not any(isinstance(n, ast.Name) and n.id == "task" for n in names), path
        assert "prefect.task" not in _imports(path) and "prefect.tasks" not in _imports(path), path


IMPORT_ALL = """
import importlib, sys, warnings
import autokeras, cv2, keras, matplotlib, numpy, pandas, prefect, pyarrow.parquet, sklearn, tensorflow  # noqa: F401
calls, root = [], sys.argv[1]

def record(what, original):
    def wrapper(*args, **kwargs):
        caller = sys._getframe(1).f_code.co_filename
        if caller.startswith((root + "/tasks/", root + "/flows/")):  # ours, not a library imported on the way
            calls.append((what, caller))
        return original(*args, **kwargs)
    return wrapper

matplotlib.use = record("matplotlib.use", matplotlib.use)
warnings.filterwarnings = record("warnings.filterwarnings", warnings.filterwarnings)
for name in sys.argv[2:]:
    importlib.import_module(name)
print("CALLS", calls)
"""


def test_importing_the_code_does_no_work():
    names = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
             for folder in ("tasks", "flows") for p in _modules(folder) if p.name != "__main__.py"]
    result = subprocess.run([sys.executable, "-c", IMPORT_ALL, str(ROOT), *names], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CALLS []" in result.stdout
