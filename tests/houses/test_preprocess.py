from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer, MinMaxScaler

from tasks.core.errors import DataError
from tasks.houses import encoders as preprocess


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "house": np.arange(1, n + 1),
        "bedrooms": rng.integers(1, 6, n).astype(float),
        "bathrooms": rng.integers(1, 4, n).astype(float),
        "area": rng.integers(800, 4000, n).astype(float),
        "zipcode": rng.choice([90001, 90002, 90003, 90004], n, p=[0.5, 0.3, 0.15, 0.05]),
        "price": rng.integers(100_000, 900_000, n).astype(float),
    })


def test_filter_keeps_zipcodes_with_enough_houses():
    frame = pd.DataFrame({"house": range(1, 8), "zipcode": [1, 1, 1, 2, 2, 3, 1]})
    kept = preprocess.filter_zipcodes(frame, 3)
    assert kept["house"].tolist() == [1, 2, 3, 7]


@pytest.mark.parametrize("minimum, kept", [(1, [1, 2, 3, 4, 5, 6]), (2, [1, 2, 3, 4, 5]), (3, [1, 2, 3])])
def test_filter_keeps_a_zipcode_with_exactly_the_minimum(minimum, kept):
    """"At least N houses": zip 1 has 3 houses, zip 2 has 2, zip 3 has 1; a zip code with exactly N stays."""
    frame = pd.DataFrame({"house": range(1, 7), "zipcode": [1, 1, 1, 2, 2, 3]})
    assert preprocess.filter_zipcodes(frame, minimum)["house"].tolist() == kept


def test_filter_that_leaves_nothing_is_an_error():
    frame = pd.DataFrame({"house": [1, 2], "zipcode": [1, 2]})
    with pytest.raises(DataError, match="--min-houses-per-zip 5 leaves no houses.*largest zip code has 1"):
        preprocess.filter_zipcodes(frame, 5)


def test_split_is_the_tutorials_train_test_split():
    frame = _frame()
    train, test = preprocess.split_houses(frame, 0.25, 42)
    expected_train, expected_test = train_test_split(frame, test_size=0.25, random_state=42)
    assert train["house"].tolist() == expected_train["house"].tolist()
    assert test["house"].tolist() == expected_test["house"].tolist()
    assert len(test) == 10


@pytest.mark.parametrize("n, test_size", [(1, 0.25), (4, 0.9), (2, 0.99)])
def test_split_that_would_be_empty_is_an_error(n, test_size):
    with pytest.raises(DataError, match="both must be non-empty"):
        preprocess.split_houses(_frame(n), test_size, 42)


def test_features_match_scikit_learn_minmax_and_label_binarizer():
    frame = _frame()
    train, test = preprocess.split_houses(frame, 0.25, 42)
    encoders = preprocess.fit_encoders(train, frame)
    scaler = MinMaxScaler().fit(train[["bedrooms", "bathrooms", "area"]])
    binarizer = LabelBinarizer().fit(frame["zipcode"])
    expected = np.hstack([binarizer.transform(test["zipcode"]),
                          scaler.transform(test[["bedrooms", "bathrooms", "area"]])])
    np.testing.assert_allclose(preprocess.encode_attributes(test, encoders), expected, rtol=1e-6, atol=1e-6)
    assert encoders["feature_names"][:4] == ["zipcode_90001", "zipcode_90002", "zipcode_90003", "zipcode_90004"]


def test_prices_scaled_by_the_train_maximum_and_back():
    frame = _frame()
    train, test = preprocess.split_houses(frame, 0.25, 42)
    test.loc[0, "price"] = 2 * frame["price"].max()  # the dearest house is a test house: not part of the scale
    encoders = preprocess.fit_encoders(train, pd.concat([train, test]))
    assert encoders["price_max"] == train["price"].max()
    scaled = preprocess.scale_prices(test["price"], encoders)
    np.testing.assert_allclose(scaled, test["price"] / train["price"].max(), rtol=1e-6)
    np.testing.assert_allclose(scaled.astype(np.float64) * encoders["price_max"], test["price"], rtol=1e-6)


def test_encoders_survive_json_and_apply_to_a_new_house():
    frame = _frame()
    train, _ = preprocess.split_houses(frame, 0.25, 42)
    encoders = json.loads(json.dumps(preprocess.fit_encoders(train, frame)))
    new_house = pd.DataFrame({"bedrooms": [3.0], "bathrooms": [2.0], "area": [2000.0], "zipcode": [90002]})
    features = preprocess.encode_attributes(new_house, encoders)
    assert features.shape == (1, 7) and features.dtype == np.float32
    assert features[0, :4].tolist() == [0, 1, 0, 0]
    limits = encoders["continuous"]["area"]
    assert features[0, 6] == pytest.approx((2000 - limits["min"]) / (limits["max"] - limits["min"]))


def test_unknown_zipcode_is_a_clear_error():
    frame = _frame()
    encoders = preprocess.fit_encoders(frame, frame)
    with pytest.raises(DataError, match=r"zip code\(s\) \[12345\] were not seen in training"):
        preprocess.encode_attributes(frame.assign(zipcode=12345).head(1), encoders)
