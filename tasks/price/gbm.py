"""The tree baseline beside the networks: scikit-learn's HistGradientBoostingRegressor on the
attributes (the dataset's min-max features and one-hot zip codes), on the log price.

Its settings were chosen by 3-fold cross-validation on the train houses of the real data (a grid of
144 points, the ten best re-scored on two more fold draws): absolute error on the log price, learning
rate 0.1, 100 trees of at most 16 leaves, at least 10 houses per leaf; 23.5 % CV MAPE against the
MLP's 25.1 % on the same folds. No early stopping, so it is deterministic.

It is a yardstick on the leaderboards (`compare`, `bench/bench_quality.py`), not a model to export:
scikit-learn estimators have no safe file format here (pickle is not allowed), so it is refitted,
in a second, whenever it is shown.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tasks.houses.arrays import read_split
from tasks.houses.dataset import Dataset
from tasks.training.metrics import regression_metrics

SETTINGS = {"loss": "absolute_error", "learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 16,
            "min_samples_leaf": 10, "early_stopping": False}


def fit_and_predict(train_features: np.ndarray, train_prices: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Prices of `features` from a model fitted on the train houses."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(**SETTINGS).fit(train_features, np.log(train_prices))
    return np.exp(model.predict(features))


def test_predictions(train_path: Path, test_path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(actual, predicted test prices, seconds to fit and predict), fitted on the train split."""
    started = time.perf_counter()
    train = read_split(train_path, ("attributes", "price"))
    test = read_split(test_path, ("attributes", "price"))
    predicted = fit_and_predict(train["attributes"], train["price"], test["attributes"])
    return test["price"], predicted, time.perf_counter() - started


def leaderboard_row(dataset: Dataset) -> dict:
    """The baseline's row for a price leaderboard (test metrics)."""
    actual, predicted, seconds = test_predictions(dataset.train_path, dataset.test_path)
    return {"name": "gbm (tree baseline)", "strategy": "gbm", "trainer": "scikit-learn",
            **regression_metrics(actual, predicted), "n_test": len(actual), "epochs": SETTINGS["max_iter"],
            "seconds": round(seconds, 2)}
