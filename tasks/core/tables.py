"""Tables for people and spreadsheets: markdown, CSV, and a leaderboard's three files."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

from tasks.core.files import atomic_write_bytes, atomic_write_text


def cell(value) -> str:
    """A table cell: large numbers with thousands separators, others to 4 significant digits."""
    if not isinstance(value, float):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(rows: list[dict], columns: list[str], path: Path) -> Path:
    """Rows as CSV with these columns (others ignored), written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_bytes(path, buffer.getvalue().encode())


def write_leaderboard(out: Path, rows: list[dict], columns: list[str], body: str,
                      plot: Callable[[Path], Path]) -> dict[str, Path]:
    """leaderboard.csv (rows), leaderboard.png (drawn by `plot`) and leaderboard.md (`body`, then the plot)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": write_csv(rows, columns, out / "leaderboard.csv"), "plot": plot(out / "leaderboard.png")}
    text = body.rstrip() + "\n\n![leaderboard](leaderboard.png)\n"
    paths["markdown"] = atomic_write_text(out / "leaderboard.md", text)
    return paths
