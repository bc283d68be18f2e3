"""Prediction intervals: split conformal on out-of-fold residuals of the train houses, in log-price space.

Calibration: the train houses are cut into K folds (duplicate groups whole, the folds of `--cv K`); a model
trained on the other folds prices each fold's houses, and each house's score is |log(actual / predicted)|.
For a level L (0.8: an 80 % range), q is the ceil((n + 1) L)-th smallest of the n scores (the conformal
quantile), and the range is [predicted / e^q, predicted * e^q]: under exchangeability it holds a new
house's price with probability at least L. The test houses are never used to calibrate; they measure the
coverage. The n scores are kept with the model (`interval.json`), so the level can be chosen when pricing.
Fold models see (K-1)/K of the houses, so their errors are a little larger than the final model's: the
range errs on the wide side.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.core.errors import DataError

DEFAULT_LEVEL = 0.8
FILE = "interval.json"


@dataclass(frozen=True)
class Interval:
    """The calibration scores |log(actual / predicted)| of the train houses, out of fold."""

    scores: np.ndarray  # (n,) sorted
    folds: int

    @classmethod
    def calibrate(cls, actual: np.ndarray, predicted: np.ndarray, folds: int) -> Interval:
        scores = np.abs(np.log(np.asarray(actual, np.float64) / np.asarray(predicted, np.float64)))
        return cls(np.sort(scores), folds)

    def half_width(self, level: float = DEFAULT_LEVEL) -> float:
        """q of the level, in log-price units (inf when there are too few houses for that level)."""
        check_level(level)
        n = len(self.scores)
        rank = math.ceil((n + 1) * level)
        return math.inf if rank > n else float(self.scores[rank - 1])

    def bounds(self, predicted: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) prices of the range around each predicted price."""
        q = self.half_width(level)
        predicted = np.asarray(predicted, np.float64)
        if not math.isfinite(q):  # too few calibration houses for this level: the range is unbounded
            return np.zeros_like(predicted), np.full_like(predicted, np.inf)
        return predicted * math.exp(-q), predicted * math.exp(q)

    def to_json(self) -> dict:
        return {"method": "split conformal, out-of-fold |log(actual / predicted)| of the train houses",
                "folds": self.folds, "n": len(self.scores), "scores": [round(float(s), 6) for s in self.scores]}

    @classmethod
    def from_json(cls, value: dict) -> Interval:
        return cls(np.sort(np.asarray(value["scores"], np.float64)), int(value["folds"]))

    def save(self, path: Path) -> Path:
        from tasks.core.files import atomic_write_json

        return atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> Interval:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"{FILE} is unreadable ({type(error).__name__}); use the model/ folder of a train run, "
                            "whole", path) from None


def check_level(level: float) -> None:
    if not 0 < level < 1:
        raise DataError(f"--interval-level {level}: give a level between 0 and 1 (0.8 for an 80 % range)")


def coverage(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """The share of prices inside their range."""
    actual = np.asarray(actual, np.float64)
    return float(np.mean((actual >= low) & (actual <= high)))


def interval_metrics(interval: Interval, actual: np.ndarray, predicted: np.ndarray,
                     level: float = DEFAULT_LEVEL) -> dict:
    """Coverage and mean width of the level's range on priced houses (test houses: never the calibration)."""
    low, high = interval.bounds(predicted, level)
    width = high - low
    return {"level": level, "coverage": coverage(actual, low, high), "mean_width": float(np.mean(width)),
            "mean_width_pct": float(np.mean(width / np.asarray(predicted, np.float64)) * 100),
            "half_width_log": interval.half_width(level), "calibration_houses": len(interval.scores),
            "folds": interval.folds}
