"""Publishing reports to the Prefect UI: markdown whose plots are embedded in the page, a headline table,
and one artifact per plot.

The UI cannot open files on the machine that ran the flow, so every image a report's markdown refers
to (`![title](plots/loss.png)`, relative to the report's folder) is embedded as a
`data:image/png;base64,...` URI of a reduced copy (at most THUMBNAIL_WIDTH pixels wide, about 40 KB
for a loss plot); the full-size files stay on disk beside the report.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

THUMBNAIL_WIDTH = 720
IMAGE_REFERENCE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def image_data_uri(path: Path, max_width: int = THUMBNAIL_WIDTH) -> str:
    """A PNG data URI of the image at `path`, scaled down to `max_width` pixels wide if it is wider."""
    import cv2

    from tasks.core.images import encode_image, read_image

    image = read_image(path)
    height, width = image.shape[:2]
    if width > max_width:
        image = cv2.resize(image, (max_width, max(1, round(height * max_width / width))),
                           interpolation=cv2.INTER_AREA)
    return "data:image/png;base64," + base64.b64encode(encode_image(image, ".png")).decode("ascii")


def inline_images(markdown: str, folder: Path) -> str:
    """The markdown with each image reference to a file under `folder` replaced by its data URI; references
    to files that do not exist (or to URLs) are left as they are."""

    def embed(match: re.Match) -> str:
        title, target = match.groups()
        path = folder / target
        if "://" in target or target.startswith("data:") or not path.is_file():
            return match.group(0)
        return f"![{title}]({image_data_uri(path)})"

    return IMAGE_REFERENCE.sub(embed, markdown)


def publish_markdown(markdown: str, key: str, description: str, folder: Path) -> None:
    """A markdown artifact in the current flow run, with the images it refers to embedded."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(inline_images(markdown, folder), key=artifact_key(key), description=description)


@dataclass
class Report:
    """A run's readable report and what the UI shows of it (keys: `{key}-report`, `{key}-{table_name}`,
    `{plot_prefix}-{plot file name}`). The markdown's image paths are relative to `folder`."""

    key: str
    markdown: str
    description: str
    table: list[dict] = field(default_factory=list)
    table_name: str = "metrics"
    table_description: str = ""
    plots: dict[str, Path] = field(default_factory=dict)  # title -> PNG
    plot_prefix: str = "plot"
    folder: Path = Path(".")


def publish(report: Report) -> None:
    """Create the report's artifacts in the current flow run: the report with its plots in the page, the
    headline table, and each plot on its own."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    if report.table:
        create_table_artifact(report.table, key=artifact_key(report.key, report.table_name),
                              description=report.table_description)
    publish_markdown(report.markdown, artifact_key(report.key, "report"), report.description, report.folder)
    for title, path in report.plots.items():
        create_markdown_artifact(f"### {title}\n\n![{title}]({image_data_uri(path)})\n\nFull size: `{path.resolve()}`",
                                 key=artifact_key(report.plot_prefix, path.stem), description=title)
