"""The project's own state folder: logs (and, later, experiment records) that belong to no run.

`HOUSE_PIPELINE_HOME` when set, else `.house-pipeline/` in the working directory (ignored by git);
created on first use."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    return Path(os.environ.get("HOUSE_PIPELINE_HOME") or ".house-pipeline").expanduser()


def error_log() -> Path:
    """Where full tracebacks go, so that the screen shows one line per error."""
    path = state_dir() / "logs" / "errors.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
