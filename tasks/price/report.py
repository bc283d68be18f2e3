"""The train run's readable report (markdown) from its metrics and settings."""

from __future__ import annotations

import numpy as np

from tasks.core.tables import markdown_table
from tasks.training.metrics import METRIC_LABELS, METRIC_NAMES


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
    if worst:
        lines += ["", "## The test houses it prices worst", "Every test house, worst first, is in `predictions.csv` "
                  "(error = (predicted - actual) / actual).", "",
                  markdown_table(worst, ["house", "actual_price", "predicted_price", "error_pct"])]
    if cv:
        cv_rows = [{"metric": METRIC_LABELS[n], "mean": cv[n]["mean"], "std": cv[n]["std"]} for n in METRIC_NAMES]
        lines += ["", f"## {cv['k']}-fold cross-validation on the train houses", markdown_table(
            cv_rows, ["metric", "mean", "std"])]
    lines += ["", "## Plots", ""]
    lines += [f"![{title}]({path})" for title, path in plots.items()]
    return "\n".join(lines) + "\n"
