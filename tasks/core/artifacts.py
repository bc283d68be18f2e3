"""Publishing a report to the Prefect UI: its markdown, its headline table and a link per plot."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


@dataclass
class Report:
    """A run's readable report and what the UI shows of it (keys: `{key}-report`, `{key}-{table_name}`,
    `{plot_prefix}-{plot file name}`)."""

    key: str
    markdown: str
    description: str
    table: list[dict] = field(default_factory=list)
    table_name: str = "metrics"
    table_description: str = ""
    plots: dict[str, Path] = field(default_factory=dict)  # title -> PNG
    plot_prefix: str = "plot"


def publish(report: Report) -> None:
    """Create the report's artifacts in the current flow run."""
    from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

    if report.table:
        create_table_artifact(report.table, key=artifact_key(report.key, report.table_name),
                              description=report.table_description)
    create_markdown_artifact(report.markdown, key=artifact_key(report.key, "report"), description=report.description)
    for title, path in report.plots.items():
        create_link_artifact(path.resolve().as_uri(), link_text=title, key=artifact_key(report.plot_prefix, path.stem))
