"""The promotion gate: a candidate becomes champion only when it beats the naive baseline, is no worse
than the current champion re-evaluated on the same test houses (within a tolerance), and its
training data passed validation without drift.

Both models price the candidate's test houses through the same code (tasks.price.predict.PriceModel,
each with its own encoders and tile size); houses in zip codes the champion never saw are left out
of the comparison for both, and the report says how many.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.core import parquet
from tasks.houses.arrays import montage_side
from tasks.houses.montage import montage_tiles, resize_tile, tile_montage
from tasks.price.interval import DEFAULT_LEVEL, interval_metrics
from tasks.training.metrics import regression_metrics

COMPARED = {"mape_mean": "MAPE mean (%)", "coverage": "80 % range coverage (%)", "mean_width": "80 % range mean "
            "width ($)", "mape_median": "MAPE median (%)", "mae": "MAE ($)", "rmse": "RMSE ($)", "r2": "R^2"}


def _shown(name: str, value: float) -> str:
    if name == "coverage":
        return f"{value * 100:.1f}"
    return f"{value:,.0f}" if name in ("mae", "rmse", "mean_width") else f"{value:.3f}" if name == "r2" else \
        f"{value:.2f}"


def test_houses(test_path) -> tuple[pd.DataFrame, np.ndarray]:
    """The test split's raw attributes and (N, 2t, 2t, 3) montages."""
    table = parquet.read_table(test_path).to_pandas()
    side = montage_side(test_path)
    montages = np.stack([np.frombuffer(b, np.uint8).reshape(side, side, 3) for b in table["montage"]])
    return table.drop(columns=["montage", "features", "target"]), montages


def _retiled(montages: np.ndarray, tile_size: int) -> np.ndarray:
    if montages.shape[1] == 2 * tile_size:
        return montages
    return np.stack([tile_montage([resize_tile(t, tile_size) for t in tiles], tile_size)
                     for tiles in montage_tiles(montages)])


def score_on(price_model, houses: pd.DataFrame, montages: np.ndarray, level: float = DEFAULT_LEVEL) -> dict:
    """Regression metrics and, for a model with an interval, the coverage and mean width of its range."""
    montages = _retiled(montages, price_model.encoders["tile_size"]) if price_model.needs_photos() else None
    actual, predicted = houses["price"].to_numpy(), price_model.predict(houses, montages)
    scores = regression_metrics(actual, predicted)
    if price_model.interval is not None:
        found = interval_metrics(price_model.interval, actual, predicted, level)
        scores |= {"coverage": found["coverage"], "mean_width": found["mean_width"]}
    return scores


def compare(candidate, champion, houses: pd.DataFrame, montages: np.ndarray) -> dict:
    """Both models' metrics on the test houses the champion can price."""
    known = houses["zipcode"].astype(int).isin({int(z) for z in champion.encoders["zipcodes"]}).to_numpy()
    if not known.any():
        return {"houses": 0, "left_out": int(len(houses))}
    rows, pictures = houses[known].reset_index(drop=True), montages[known]
    return {"houses": int(known.sum()), "left_out": int((~known).sum()),
            "candidate": score_on(candidate, rows, pictures), "champion": score_on(champion, rows, pictures)}


def decide(metrics: dict, comparison: dict | None, drift: dict, tolerance: float) -> tuple[bool, list[str]]:
    """(promote?, the reasons against, or the reason for)."""
    against = []
    if metrics["mape_mean"] >= metrics["baseline"]["mape_mean"]:
        against.append(f"test MAPE {metrics['mape_mean']:.2f} % does not beat the naive baseline's "
                       f"{metrics['baseline']['mape_mean']:.2f} %")
    if comparison is not None:
        if comparison["houses"] == 0:
            against.append("the champion knows none of the test houses' zip codes: no comparison possible")
        else:
            new, old = comparison["candidate"]["mape_mean"], comparison["champion"]["mape_mean"]
            if new > old + tolerance:
                against.append(f"test MAPE {new:.2f} % is worse than the champion's {old:.2f} % on the same "
                               f"{comparison['houses']} test houses (tolerance {tolerance:g} points)")
    if drift.get("blocked"):
        against.append("the training data drifted from the champion's: " + "; ".join(drift["reasons"]))
    if against:
        return False, against
    return True, ["first champion" if comparison is None else "no worse than the champion on the same houses"]


def markdown(candidate_version: int, champion_version: int | None, metrics: dict, comparison: dict | None,
             promoted: bool, reasons: list[str]) -> str:
    verdict = "promoted to champion" if promoted else "not promoted: the champion stays"
    interval = metrics.get("interval")
    covered = ("" if not interval else f", its {interval['level'] * 100:g} % price range covering "
               f"{interval['coverage'] * 100:.1f} % of them (mean width ${interval['mean_width']:,.0f})")
    lines = [f"# Promotion gate: version {candidate_version} {verdict}", "",
             *(f"- {reason}" for reason in reasons), "",
             f"Naive baseline test MAPE: {metrics['baseline']['mape_mean']:.2f} %; candidate: "
             f"{metrics['mape_mean']:.2f} % on all {metrics['n_test']} test houses{covered}.", ""]
    if comparison and comparison.get("houses"):
        lines += [f"## Candidate vs champion (version {champion_version}) on the same {comparison['houses']} test "
                  f"houses ({comparison['left_out']} in zip codes the champion never saw left out)", "",
                  "| metric | candidate | champion | better |", "|---|---|---|---|"]
        for name, label in COMPARED.items():
            if name not in comparison["candidate"] or name not in comparison["champion"]:
                shown = {side: _shown(name, comparison[side][name]) if name in comparison[side] else "none"
                         for side in ("candidate", "champion")}
                lines.append(f"| {label} | {shown['candidate']} | {shown['champion']} | - |")
                continue
            new, old = comparison["candidate"][name], comparison["champion"][name]
            if name == "coverage":  # the closer to the range's level, the better
                new_gap, old_gap = abs(new - DEFAULT_LEVEL), abs(old - DEFAULT_LEVEL)
                better = "same" if new_gap == old_gap else "candidate" if new_gap < old_gap else "champion"
            else:
                better = "same" if new == old else "candidate" if (new > old if name == "r2" else new < old) \
                    else "champion"
            lines.append(f"| {label} | {_shown(name, new)} | {_shown(name, old)} | {better} |")
    return "\n".join(lines) + "\n"
