"""A leaderboard of trained configurations: markdown, CSV and a bar plot of test MAPE."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from tasks.cache import atomic_write_bytes  # noqa: E402
from tasks.evaluate import markdown_table, save_figure, write_csv  # noqa: E402

COLUMNS = ["rank", "name", "strategy", "trainer", "mape_mean", "mape_median", "mae", "rmse", "r2", "epochs", "seconds"]


def rank(rows: list[dict]) -> list[dict]:
    ordered = sorted(rows, key=lambda row: row["mape_mean"])
    return [{**row, "rank": i} for i, row in enumerate(ordered, start=1)]


def write_leaderboard(rows: list[dict], out: Path, title: str) -> dict[str, Path]:
    ranked = rank(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(ranked, COLUMNS, out / "leaderboard.csv")
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(ranked)), 4))
    ax.bar([row["name"] for row in ranked], [row["mape_mean"] for row in ranked],
           yerr=[row.get("mape_std", 0) / max(row.get("n_test", 1), 1) ** 0.5 for row in ranked], capsize=4)
    ax.set(ylabel="test MAPE (%)", title=title)
    ax.tick_params(axis="x", rotation=30)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, out / "leaderboard.png")
    text = f"# {title}\n\n{markdown_table(ranked, COLUMNS)}\n\nError bars: standard error of the mean " \
           f"absolute percentage error over the test houses.\n\n![leaderboard](leaderboard.png)\n"
    atomic_write_bytes(out / "leaderboard.md", text.encode())
    return {"markdown": out / "leaderboard.md", "csv": out / "leaderboard.csv", "plot": out / "leaderboard.png"}
