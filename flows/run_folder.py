"""A flow's run folder (`--out`) is written whole: built in a staging folder beside the earlier run's and
swapped in only when the flow succeeds (tasks.core.files.replacing_run_folder), with `run.json` saying
which flow run made it. A failure of any kind leaves the earlier run's folder exactly as it was."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel

from tasks.core.files import atomic_write_json, replacing_run_folder
from tasks.core.paths import RUN_FILE

Config = TypeVar("Config", bound=BaseModel)


@contextlib.contextmanager
def staged(config: Config) -> Iterator[Config]:
    """The config with `out` set to the staging folder; the run folder is replaced when the block succeeds."""
    from prefect.runtime import flow_run

    with replacing_run_folder(config.out) as out:
        yield config.model_copy(update={"out": out})
        atomic_write_json(out / RUN_FILE, {"flow": flow_run.flow_name, "flow_run": flow_run.name,
                                           "flow_run_id": str(flow_run.id),
                                           "finished": datetime.now(UTC).isoformat(timespec="seconds")})
