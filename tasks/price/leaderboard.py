"""A leaderboard of trained price configurations: markdown, CSV and a bar plot of test MAPE."""

from __future__ import annotations

from pathlib import Path

from tasks.core.figures import pyplot, save_figure
from tasks.core.tables import markdown_table, write_leaderboard

COLUMNS = ["rank", "name", "strategy", "trainer", "mape_mean", "mape_median", "mae", "rmse", "r2", "epochs", "seconds"]


def rank(rows: list[dict]) -> list[dict]:
    ordered = sorted(rows, key=lambda row: row["mape_mean"])
    return [{**row, "rank": i} for i, row in enumerate(ordered, start=1)]


def _plot(ranked: list[dict], title: str, path: Path) -> Path:
    fig, ax = pyplot().subplots(figsize=(max(5, 1.2 * len(ranked)), 4))
    ax.bar([row["name"] for row in ranked], [row["mape_mean"] for row in ranked],
           yerr=[row.get("mape_std", 0) / max(row.get("n_test", 1), 1) ** 0.5 for row in ranked], capsize=4)
    ax.set(ylabel="test MAPE (%)", title=title)
    ax.tick_params(axis="x", rotation=30)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def write_price_leaderboard(rows: list[dict], out: Path, title: str) -> dict[str, Path]:
    ranked = rank(rows)
    body = (f"# {title}\n\n{markdown_table(ranked, COLUMNS)}\n\nError bars: standard error of the mean "
            "absolute percentage error over the test houses.")
    return write_leaderboard(out, ranked, COLUMNS, body, lambda path: _plot(ranked, title, path))
