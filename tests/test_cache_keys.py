"""What keys the `train/` and `automl/` cache entries: a changed option, or changed code in a module that
shapes the output, gives a new key (so the entry is built anew); nothing else does. The code change is real:
a copy of the sources with one edited module, imported by a fresh process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.automl.options import Budget, SearchSpace
from tasks.automl.point import PointData, point_key
from tasks.price.options import PriceOptions
from tasks.price.prefect_tasks import training_key
from tests.conftest import ROOT
from tests.fixtures import make_houses, run_stages

KEYS = """
import json, sys
from pathlib import Path

import pytest

import pytest
from tasks.automl.options import Budget, SearchSpace
from tasks.automl.point import PointData, point_key
from tasks.houses.dataset import Dataset
from tasks.price.options import PriceOptions
from tasks.price.prefect_tasks import training_key
dataset = Dataset(Path(sys.argv[1]), 8, 0, 0, [], False)
budget = Budget(seconds=60, max_trials=2, epochs=5)
print(json.dumps({"train": training_key(dataset, PriceOptions(strategy="mixed", epochs=2)),
                  "automl": point_key(PointData(dataset), "attributes", budget, SearchSpace())}))
"""


def _keys_from(code_root: Path, dataset_folder: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code_root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", KEYS, str(dataset_folder)], cwd=code_root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_changed_options_or_code_give_new_train_and_automl_keys(tmp_path):
    data = make_houses(tmp_path / "houses", [90000 + n % 3 for n in range(12)], photo_size=(24, 20))
    _, dataset = run_stages(data, tmp_path / "cache", tile_size=8)
    base = PriceOptions(strategy="mixed", epochs=2)
    budget = Budget(seconds=60, max_trials=2, epochs=5)
    keys = {"train": training_key(dataset, base), "automl": point_key(PointData(dataset), "attributes", budget,
                                                                       SearchSpace())}
    assert training_key(dataset, PriceOptions(strategy="mixed", epochs=2)) == keys["train"]
    assert training_key(dataset, PriceOptions(strategy="mixed", epochs=3)) != keys["train"]
    assert training_key(dataset, PriceOptions(strategy="mixed", epochs=2, learning_rate=0.01)) != keys["train"]
    longer = Budget(seconds=61, max_trials=2, epochs=5)
    assert point_key(PointData(dataset), "attributes", longer, SearchSpace()) != keys["automl"]
    assert point_key(PointData(dataset), "attributes", budget, SearchSpace(seed=9)) != keys["automl"]

    code = tmp_path / "code"
    shutil.copytree(ROOT / "tasks", code / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    assert _keys_from(code, dataset.folder) == keys  # an unchanged copy, another process: the same keys
    for module in ("tasks/price/models.py", "tasks/automl/search.py"):  # the model and the search code
        path = code / module
        path.write_text(path.read_text() + "\n# a changed line\n")
    changed = _keys_from(code, dataset.folder)
    assert changed["train"] != keys["train"] and changed["automl"] != keys["automl"]
