"""Encoders, as in the tutorials: zip-code filter, split, min-max scaling, one-hot zip
codes, prices scaled by the train maximum. The fitted encoders are plain JSON so that a
predict step can apply them to new houses.

Feature vector order (the tutorials'): one-hot zip codes (sorted), then the scaled continuous
columns bedrooms, bathrooms, area.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tasks.core.errors import DataError
from tasks.core.splits import groups_whole

CONTINUOUS_COLUMNS = ("bedrooms", "bathrooms", "area")


def filter_zipcodes(houses: pd.DataFrame, min_houses: int) -> pd.DataFrame:
    """Keep the houses whose zip code has at least `min_houses` houses (order kept)."""
    counts = houses["zipcode"].value_counts()
    keep = counts[counts >= min_houses].index
    chosen = houses["zipcode"].isin(keep)
    if chosen.all():  # the same table, not a copy of it
        return houses if houses.index.equals(pd.RangeIndex(len(houses))) else houses.reset_index(drop=True)
    kept = houses[chosen]
    if kept.empty:
        raise DataError(
            f"--min-houses-per-zip {min_houses} leaves no houses: the largest zip code has "
            f"{int(counts.max()) if len(counts) else 0} house(s); lower the threshold")
    return kept.reset_index(drop=True)


def split_houses(houses: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scikit-learn's train_test_split, as the tutorials call it (same houses, same order); then, when the
    houses have a `group` column (tasks.houses.duplicates), each group that straddles the split moves wholly
    to the side holding most of it (train on a tie). Without groups this is exactly the tutorials' split."""
    n = len(houses)
    n_test = math.ceil(test_size * n)
    if n_test == 0 or n - n_test == 0:
        raise DataError(
            f"--test-size {test_size} on {n} house(s) gives {n - n_test} train and {n_test} test "
            "houses; both must be non-empty: use more houses or another --test-size")
    train, test = train_test_split(houses, test_size=test_size, random_state=seed)
    if "group" in houses.columns:
        train, test = _groups_on_one_side(train, test)
    if train.empty or test.empty:
        raise DataError(f"--test-size {test_size}: keeping each duplicate group on one side leaves "
                        f"{len(train)} train and {len(test)} test houses; use more houses or another --test-size")
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _groups_on_one_side(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each group wholly on the side holding most of it (train on a tie); the order within each side kept."""
    both = pd.concat([train, test])
    sides = groups_whole(both["group"].to_numpy(), np.r_[np.zeros(len(train), int), np.ones(len(test), int)])
    moved_in = both.iloc[len(train):][sides[len(train):] == 0]
    moved_out = both.iloc[:len(train)][sides[:len(train)] == 1]
    return (pd.concat([train[sides[:len(train)] == 0], moved_in]),
            pd.concat([test[sides[len(train):] == 1], moved_out]))


def fit_encoders(train: pd.DataFrame, kept: pd.DataFrame) -> dict:
    """Min-max ranges and the price scale from train only; zip codes from all kept houses
    (the tutorials fit their LabelBinarizer on the whole filtered frame)."""
    minimum = train[list(CONTINUOUS_COLUMNS)].min()
    maximum = train[list(CONTINUOUS_COLUMNS)].max()
    zipcodes = sorted(int(z) for z in kept["zipcode"].unique())
    return {
        "continuous": {
            c: {"min": float(minimum[c]), "max": float(maximum[c])} for c in CONTINUOUS_COLUMNS
        },
        "zipcodes": zipcodes,
        "price_max": float(train["price"].max()),
        "feature_names": [f"zipcode_{z}" for z in zipcodes] + list(CONTINUOUS_COLUMNS),
    }


def encode_attributes(houses: pd.DataFrame, encoders: dict) -> np.ndarray:
    """(N, n_zipcodes + 3) float32 features; an unknown zip code is a DataError."""
    zipcodes = encoders["zipcodes"]
    unknown = sorted(set(int(z) for z in houses["zipcode"]) - set(zipcodes))
    if unknown:
        raise DataError(f"zip code(s) {unknown} were not seen in training; known: {zipcodes}")
    one_hot = (houses["zipcode"].to_numpy()[:, None] == np.array(zipcodes)[None, :])
    scaled = []
    for column, limits in encoders["continuous"].items():
        span = limits["max"] - limits["min"]
        span = span if span != 0 else 1.0  # as scikit-learn's MinMaxScaler
        scaled.append((houses[column].to_numpy(dtype=np.float64) - limits["min"]) / span)
    return np.hstack([one_hot.astype(np.float64), np.stack(scaled, axis=1)]).astype(np.float32)


def scale_prices(prices: pd.Series | np.ndarray, encoders: dict) -> np.ndarray:
    return (np.asarray(prices, dtype=np.float64) / encoders["price_max"]).astype(np.float32)
