"""The sweep's leaderboard (markdown, CSV and a plot of test score against budget per task, with the
train flow's hand-built models on the same split drawn beside the AutoML points) and each point's
markdown summary."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from tasks.automl.point import TRIAL_COLUMNS, score_of
from tasks.core.figures import pyplot, save_figure
from tasks.core.tables import markdown_table, write_leaderboard

COLUMNS = ["task", "kind", "budget", "seconds_limit", "max_trials", "epochs", "trials_run", "kept", "seconds",
           "stopped_by_deadline", "reused", "metric", "score"]
LOWER_IS_BETTER = {"mape_mean": True, "accuracy": False}


def _ordered(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["task"], r["kind"] != "hand-built", r.get("seconds_limit") or 0,
                                       r["budget"]))


def _plot(rows: list[dict], path: Path) -> Path:
    tasks = sorted({row["task"] for row in rows})
    fig, axes = pyplot().subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.8), squeeze=False)
    for ax, name in zip(axes[0], tasks):
        automl = sorted((r for r in rows if r["task"] == name and r["kind"] == "automl"),
                        key=lambda r: r["seconds_limit"])
        metric = (automl or [r for r in rows if r["task"] == name])[0]["metric"]
        if automl:
            ax.plot([r["seconds_limit"] for r in automl], [r["score"] for r in automl], "o-", label="AutoML")
            ax.set_xscale("log")
        for row in (r for r in rows if r["task"] == name and r["kind"] == "hand-built"):
            ax.axhline(row["score"], color="grey", linestyle="--", label=f"hand-built {row['budget']}")
        ax.set(title=name, xlabel="budget (s, log scale)",
               ylabel="test MAPE (%), lower is better" if metric == "mape_mean" else "test accuracy, higher is better")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def write_sweep_leaderboard(rows: list[dict], out: Path) -> dict[str, Path]:
    ordered = _ordered(rows)
    lines = ["# AutoML sweep", ""]
    for name in sorted({row["task"] for row in ordered}):
        task_rows = [r for r in ordered if r["task"] == name]
        metric = task_rows[-1]["metric"]
        best = (min if LOWER_IS_BETTER[metric] else max)(task_rows, key=lambda r: r["score"])
        lines += [f"## {name} (test {metric}; best: {best['kind']} {best['budget']}, {best['score']:.4g})", "",
                  markdown_table(task_rows, [c for c in COLUMNS if c != "task"]), ""]
    lines += ["Scores are on the held-out test split; budgets are wall-clock limits of the search."]
    return write_leaderboard(out, ordered, COLUMNS, "\n".join(lines), lambda path: _plot(ordered, path))


def point_markdown(result: dict, trials_csv: str) -> str:
    metric, score = score_of(result)
    budget = result["budget"]
    lines = [f"# AutoML {result['task']}, budget {budget['name']}", "",
             f"- limit {budget['seconds']:g} s, at most {budget['max_trials']} trials of {budget['epochs']} epochs",
             f"- spent {result['seconds']:.1f} s on {result['trials_run']} AutoKeras trial(s)"
             + (" and the hand-built model's" if result.get("hand_built_val_loss") is not None else "")
             + (" (stopped by the wall-clock limit)" if result["stopped_by_deadline"] else ""),
             f"- kept: {result.get('best', 'autokeras')} (lowest validation loss)",
             f"- test {metric}: **{score:.4g}** on {result['n_test']} samples", ""]
    rows = list(csv.DictReader(io.StringIO(trials_csv)))
    lines.append(markdown_table(rows, TRIAL_COLUMNS[:-1]))
    return "\n".join(lines) + "\n"
