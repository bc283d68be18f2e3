"""The train run's readable report (markdown) from its metrics and settings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tasks.core.figures import pyplot, save_figure
from tasks.core.tables import markdown_table
from tasks.price.explain import label
from tasks.training.metrics import METRIC_LABELS, METRIC_NAMES


def plot_importance(importance: dict[str, float], houses: int, path: Path) -> Path:
    """Mean absolute effect of each attribute group and photo over the test houses, largest on top (k$)."""
    names = sorted(importance, key=importance.get)
    fig, ax = pyplot().subplots(figsize=(7, 0.45 * len(names) + 1.6))
    colors = ["tab:orange" if label(n).startswith("photo") else "tab:blue" for n in names]
    bars = ax.barh([label(n) for n in names], [importance[n] / 1e3 for n in names], color=colors)
    ax.bar_label(bars, labels=[f"${importance[n] / 1e3:,.0f}k" for n in names], padding=3, fontsize=9)
    ax.set(xlabel="mean absolute effect on the price (k$)",
           title=f"What moves the prices: {houses} test houses\n"
                 "(exact Shapley effects; attributes blue, photos orange)")
    ax.set_xlim(0, max(importance.values(), default=0) / 1e3 * 1.25 or 1)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path)


def _dollars(value: float) -> str:
    return f"{'+' if value >= 0 else '-'}${abs(value):,.0f}"


def cv_summary(folds: list[dict]) -> dict[str, dict[str, float]]:
    return {name: {"mean": float(np.mean([f[name] for f in folds])), "std": float(np.std([f[name] for f in folds]))}
            for name in METRIC_NAMES}


def train_report(metrics: dict, baseline: dict, options: dict, data: dict, prices: dict,
                 plots: dict[str, str], cv: dict | None, worst: list[dict] | None = None) -> str:
    rows = [{"metric": METRIC_LABELS[n], "model": metrics[n], "baseline (train median)": baseline[n]}
            for n in METRIC_NAMES]
    lines = [
        f"# House prices: {options['strategy']} model, {options['trainer']} trainer",
        "",
        *([f"**Warning: this model is worse than no model**: {metrics['warning']}. Try other seeds or "
           "`--ensemble N`, or a strategy with the attributes (mlp, mixed); do not use it as it is.", ""]
          if metrics.get("warning") else []),
        "## Data",
        f"- source: `{data['source']}`",
        f"- houses: {data['houses_kept']} kept of {data['houses_read']} read, in {data['zipcodes_kept']} zip codes "
        f"with at least {data['min_houses_per_zip']} houses",
        f"- split: {metrics['n_train']} train ({metrics['n_validation']} of them for validation), "
        f"{metrics['n_test']} test houses (seed {data['split_seed']})",
        *([f"- duplicates: {data['duplicates']['groups']} group(s) of houses that share a photo or a record, each "
           f"on one side of every split; {data['duplicates']['dropped']} duplicate record(s) left out "
           "(`preprocess/duplicates.md`)"] if data.get("duplicates") else []),
        f"- test prices: mean ${prices['mean']:,.0f}, standard deviation ${prices['std']:,.0f}",
        "",
        "## Parameters",
        markdown_table([{"parameter": k, "value": v} for k, v in options.items()], ["parameter", "value"]),
        "",
        "## Metrics on the test houses",
        markdown_table(rows, ["metric", "model", "baseline (train median)"]),
        "",
        f"Trained {metrics['epochs']} epochs " + (
            f"(best validation epoch {metrics['best_epoch']})" if metrics["n_validation"] else
            "on every train house (no validation share, so the loss plot shows the training loss only)")
        + f" in {metrics['seconds']:.1f} s on {metrics['replicas']} replica(s).",
        "",
        f"A single test split of {metrics['n_test']} houses is noisy: one or two mispriced houses move "
        "the MAPE by points. " + ("Cross-validation below shows the spread." if cv else
                                  "Run with `--cv K` to see the spread across folds."),
    ]
    if metrics.get("top5_price_ratios"):
        lines += ["", "The five dearest test houses are priced at " + ", ".join(
            f"{r:.2f}" for r in metrics["top5_price_ratios"]) + f" of their prices (median "
            f"{metrics['top5_price_ratio_median']:.2f}); a model that caps its prices shows low ratios here."]
    interval = metrics.get("interval")
    if interval:
        lines += ["", f"## How sure: the {interval['level'] * 100:g} % price range",
                  f"Split conformal on out-of-fold errors of the train houses ({interval['folds']} folds, "
                  f"{interval['calibration_houses']} houses, log-price space; the test houses are not used to "
                  "calibrate). On the test houses:", "",
                  markdown_table([{"level": f"{interval['level'] * 100:g} %",
                                   "coverage": f"{interval['coverage'] * 100:.1f} %",
                                   "mean width": f"${interval['mean_width']:,.0f}",
                                   "mean width / price": f"{interval['mean_width_pct']:.1f} %",
                                   "range": f"price / {math.exp(interval['half_width_log']):.3f} .. "
                                            f"price x {math.exp(interval['half_width_log']):.3f}",
                                   "MAPE": f"{metrics['mape_mean']:.2f} %"}],
                                 ["level", "coverage", "mean width", "mean width / price", "range", "MAPE"])]
    if worst:
        columns = ["house", "actual_price", "predicted_price", "error_pct", *(
            ["price_low", "price_high"] if "price_low" in worst[0] else [])]
        lines += ["", "## The test houses it prices worst", "Every test house, worst first, is in `predictions.csv` "
                  "(error = (predicted - actual) / actual), with its range and each input's effect.", "",
                  markdown_table(worst, columns)]
        if "explanation" in worst[0]:
            lines += ["", "### Why it priced them so",
                      f"Each input's effect in dollars: exact Shapley values, from the average train house "
                      f"(${metrics['base_price']:,.0f}) to the predicted price; an input left out takes the train "
                      "houses' mean (mean features, mean photo tile). Largest first.", ""]
            for row in worst:
                effects = ", ".join(f"{item['input']} {_dollars(item['effect'])}" for item in row["explanation"])
                lines.append(f"- house {row['house']} (actual ${row['actual_price']:,.0f}, predicted "
                             f"${row['predicted_price']:,.0f}): {effects}")
    if metrics.get("importance"):
        ranked = sorted(metrics["importance"].items(), key=lambda item: -item[1])
        lines += ["", "## What moves the prices", "Mean absolute effect of each input over the test houses "
                  "(see the plot below): " + ", ".join(f"{label(n)} ${v:,.0f}" for n, v in ranked) + "."]
    if cv:
        cv_rows = [{"metric": METRIC_LABELS[n], "mean": cv[n]["mean"], "std": cv[n]["std"]} for n in METRIC_NAMES]
        lines += ["", f"## {cv['k']}-fold cross-validation on the train houses", markdown_table(
            cv_rows, ["metric", "mean", "std"])]
    lines += ["", "## Plots", ""]
    lines += [f"![{title}]({path})" for title, path in plots.items()]
    return "\n".join(lines) + "\n"
