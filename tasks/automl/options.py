"""AutoML sweep settings (no TensorFlow import): budgets and the search space.

A budget is a wall-clock limit plus the most trials and epochs per trial. As text:
`SECONDS[s|m|h]` (trials and epochs from the sweep's defaults) or `SECONDS[s|m|h]:TRIALSxEPOCHS`,
for example `60s`, `5m:4x20`. A file (.json, .yaml, .yml) holds a list of such strings or of
objects `{seconds, max_trials, epochs}`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tasks.core.errors import DataError

SweepTask = Literal["attributes", "photos", "mixed", "classify"]
ImageBlock = Literal["vanilla", "resnet", "xception", "efficientnet", "any"]
Tuner = Literal["greedy", "random", "bayesian", "hyperband"]

REGRESSION_TASKS = ("attributes", "photos", "mixed")
# The train flow's hand-built model that answers the same question as each regression task.
HAND_BUILT = {"attributes": "mlp", "photos": "cnn", "mixed": "mixed"}

_BUDGET = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smh]?)(?::(?P<trials>\d+)x(?P<epochs>\d+))?$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}
BUDGET_FORMS = "SECONDS[s|m|h] or SECONDS[s|m|h]:TRIALSxEPOCHS (e.g. 60s, 5m:4x20), or a .json/.yaml file"


class Budget(BaseModel):
    """One point of a sweep."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seconds: float = Field(gt=0, description="Wall-clock limit of the search.")
    max_trials: int = Field(ge=1, le=10_000, description="Most models tried.")
    epochs: int = Field(ge=1, le=100_000, description="Most epochs per trial.")

    @property
    def name(self) -> str:
        seconds = f"{self.seconds:g}s"
        return f"{seconds}-{self.max_trials}x{self.epochs}"


class SearchSpace(BaseModel):
    """What AutoKeras may choose from; part of each point's cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_block: ImageBlock = "vanilla"
    tuner: Tuner = "greedy"
    seed: int = 42
    validation_fraction: float = 0.15
    patience: int = 5
    hand_built_seed: bool = True  # regression tasks: the hand-built model is the first trial (tasks.automl.seed)


def parse_budget(text: str, max_trials: int, epochs: int) -> Budget:
    match = _BUDGET.match(text.strip().lower())
    if match is None:
        raise DataError(f"budget {text!r} not understood; use {BUDGET_FORMS}")
    seconds = float(match["amount"]) * _UNIT_SECONDS[match["unit"]]
    trials = int(match["trials"]) if match["trials"] else max_trials
    epochs = int(match["epochs"]) if match["epochs"] else epochs
    if seconds <= 0 or trials <= 0 or epochs <= 0:
        raise DataError(f"budget {text!r}: seconds, trials and epochs must all be above zero")
    return Budget(seconds=seconds, max_trials=trials, epochs=epochs)


def _budgets_from_file(path: Path, max_trials: int, epochs: int) -> list[Budget]:
    try:
        text = path.read_text()
        items = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise DataError(f"cannot read the budgets file: {error}", path) from error
    if not isinstance(items, list) or not items:
        raise DataError("a budgets file holds a non-empty list of budgets", path)
    budgets = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, str | int | float):
            budgets.append(parse_budget(str(item), max_trials, epochs))
            continue
        try:
            budgets.append(Budget(**{"max_trials": max_trials, "epochs": epochs, **item}))
        except (TypeError, ValidationError) as error:
            raise DataError(f"budget #{i} {item!r} is not valid: {error}; use {BUDGET_FORMS}", path) from error
    return budgets


def parse_budgets(items: list[str], max_trials: int, epochs: int) -> list[Budget]:
    """Budgets from strings or files, in the order given, without repeats."""
    budgets: list[Budget] = []
    for item in items:
        if item.lower().endswith((".json", ".yaml", ".yml")):
            budgets += _budgets_from_file(Path(item), max_trials, epochs)
        else:
            budgets.append(parse_budget(item, max_trials, epochs))
    if not budgets:
        raise DataError(f"no budgets given; use {BUDGET_FORMS}")
    return list(dict.fromkeys(budgets))
