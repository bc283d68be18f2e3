"""Data validation before training: schema and ranges of the attributes (hard failures stop the run),
and drift of the new training data against the champion's (which blocks promotion, not training).

Drift per continuous column: the population stability index (PSI, ten bins at the reference's
deciles; above 0.25 is the usual "significant shift") and the two-sample Kolmogorov-Smirnov test;
per zip code: those that appeared or vanished. The reference is the champion's training-data
profile (`data_profile.json`, logged with every tracked training run): the raw values of each column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.core.errors import DataError

CONTINUOUS = ("bedrooms", "bathrooms", "area", "price")
RANGES = {"bedrooms": (0, 50), "bathrooms": (0, 50), "area": (1, 100_000), "price": (1, 1e9)}
PSI_THRESHOLD = 0.25
PROFILE_FILE = "data_profile.json"


def check_ranges(houses: pd.DataFrame) -> list[str]:
    """Hard problems: a missing column, or values outside what a house can be; one line each."""
    problems = [f"column {c} is missing" for c in (*CONTINUOUS, "zipcode") if c not in houses.columns]
    for column, (low, high) in RANGES.items():
        if column not in houses.columns:
            continue
        values = pd.to_numeric(houses[column], errors="coerce")
        bad = houses[(values < low) | (values > high) | values.isna()]
        if len(bad):
            problems.append(f"{column} outside [{low:g}, {high:g}] for {len(bad)} house(s), e.g. house "
                            f"{int(bad['house'].iloc[0])}: {bad[column].iloc[0]!r}")
    return problems


def profile(houses: pd.DataFrame) -> dict:
    """The training data as drift reference: each continuous column's values, the zip codes' counts."""
    return {"columns": {c: [float(v) for v in houses[c]] for c in CONTINUOUS},
            "zipcodes": {str(int(z)): int(n) for z, n in houses["zipcode"].value_counts().items()}}


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `current` against `reference` (bins at the reference's quantiles)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0 if np.all(current == reference[0]) else float("inf")
    edges[0], edges[-1] = -np.inf, np.inf
    expected = np.histogram(reference, edges)[0] / len(reference)
    actual = np.histogram(current, edges)[0] / len(current)
    expected, actual = np.clip(expected, 1e-4, None), np.clip(actual, 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift(reference: dict, current: dict, threshold: float = PSI_THRESHOLD) -> dict:
    """Per column PSI and KS; zip codes appeared and vanished; `blocked` with the reasons."""
    from scipy.stats import ks_2samp

    columns, reasons = {}, []
    for column in CONTINUOUS:
        ref, cur = (np.asarray(p["columns"][column], float) for p in (reference, current))
        test = ks_2samp(ref, cur)
        columns[column] = {"psi": round(psi(ref, cur), 4), "ks": round(float(test.statistic), 4),
                           "ks_p": float(test.pvalue), "reference_median": float(np.median(ref)),
                           "current_median": float(np.median(cur))}
        if columns[column]["psi"] > threshold:
            reasons.append(f"{column} drifted (PSI {columns[column]['psi']:.2f} > {threshold:g})")
    appeared = sorted(set(current["zipcodes"]) - set(reference["zipcodes"]))
    vanished = sorted(set(reference["zipcodes"]) - set(current["zipcodes"]))
    if appeared:
        reasons.append(f"zip code(s) {', '.join(appeared)} appeared")
    if vanished:
        reasons.append(f"zip code(s) {', '.join(vanished)} vanished")
    return {"columns": columns, "zipcodes_appeared": appeared, "zipcodes_vanished": vanished,
            "threshold": threshold, "blocked": bool(reasons), "reasons": reasons}


def validate(houses: pd.DataFrame, reference: dict | None, threshold: float = PSI_THRESHOLD) -> dict:
    """The validation report of the training houses; a DataError on hard problems."""
    problems = check_ranges(houses)
    if problems:
        raise DataError("data validation failed before training: " + "; ".join(problems) +
                        "; fix the attributes file")
    current = profile(houses)
    report = {"houses": len(houses), "profile": current, "reference": "champion" if reference else None}
    report["drift"] = drift(reference, current, threshold) if reference else {"blocked": False, "reasons": []}
    return report


def markdown(report: dict) -> str:
    lines = [f"# Data validation: {report['houses']} training houses", "",
             "Schema and ranges: passed.", ""]
    found = report["drift"]
    if report["reference"] is None:
        lines.append("Drift: no champion yet, nothing to compare with.")
        return "\n".join(lines) + "\n"
    lines += ["## Drift against the champion's training data", "",
              "| column | PSI | KS statistic | KS p-value | champion median | new median |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {c} | {v['psi']:.3f} | {v['ks']:.3f} | {v['ks_p']:.3g} | {v['reference_median']:,.0f} | "
              f"{v['current_median']:,.0f} |" for c, v in found["columns"].items()]
    lines += ["", f"Zip codes appeared: {', '.join(found['zipcodes_appeared']) or 'none'}; vanished: "
              f"{', '.join(found['zipcodes_vanished']) or 'none'}.", "",
              f"**Promotion {'blocked' if found['blocked'] else 'allowed'}**"
              + (f": {'; '.join(found['reasons'])}." if found["blocked"]
                 else f" (PSI threshold {found['threshold']:g}).")]
    return "\n".join(lines) + "\n"
