"""Explanations (tasks.price.explain): exact Shapley effects of the attribute groups and photos, in dollars.

A Keras model built so that only the kitchen photo matters must name the kitchen and give the other inputs
nothing; on any model the effects sum to the price less the baseline house's price (efficiency) within $1; on a
function with known effects the values are exact, and an interaction is shared equally."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tasks.houses.ingest import PHOTO_KINDS
from tasks.price.explain import ATTRIBUTE_GROUPS, Baseline, coalitions, explain, explanation_table, format_explanation

TILE = 4  # montage (8, 8, 3): bathroom top-left, bedroom top-right, frontal bottom-right, kitchen bottom-left
FEATURES = ["zipcode_90001", "zipcode_90002", "zipcode_90003", "bedrooms", "bathrooms", "area"]
TOLERANCE = 1.0  # dollars: effects sum to price - base price


def _inputs(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    zipcodes = np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)]
    return {"attributes": np.concatenate([zipcodes, rng.uniform(0, 1, (n, 3)).astype(np.float32)], axis=1),
            "montage": rng.uniform(0, 1, (n, 2 * TILE, 2 * TILE, 3)).astype(np.float32)}


def _baseline(inputs: dict[str, np.ndarray]) -> Baseline:
    return Baseline(inputs["attributes"].mean(axis=0), inputs["montage"].mean(axis=0))


def _kitchen_only_model() -> keras.Model:
    """price = $1M x mean of the kitchen tile (bottom-left) + 0 x attributes + $200k."""
    attributes = keras.Input((len(FEATURES),), name="attributes")
    montage = keras.Input((2 * TILE, 2 * TILE, 3), name="montage")
    kitchen = keras.layers.Cropping2D(((TILE, 0), (0, TILE)))(montage)  # rows TILE.., columns ..TILE
    photo = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(1e6 / 3), bias_initializer="zeros")(
        keras.layers.GlobalAveragePooling2D()(kitchen))
    ignored = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(2e5))(
        attributes)
    return keras.Model({"attributes": attributes, "montage": montage}, keras.layers.Add()([photo, ignored]))


def _price_of(model: keras.Model):
    return lambda x: model.predict(x, batch_size=2048, verbose=0).reshape(-1).astype(np.float64)


def test_a_model_that_sees_only_the_kitchen_photo_is_explained_by_the_kitchen():
    inputs = _inputs(12, seed=1)
    inputs["montage"][:6, TILE:, :TILE] = 1.0  # half the houses have a bright kitchen: far from the mean tile
    inputs["montage"][6:, TILE:, :TILE] = 0.0
    model = _kitchen_only_model()
    found = explain(_price_of(model), inputs, _baseline(inputs), FEATURES)
    assert found.players == [*ATTRIBUTE_GROUPS, *PHOTO_KINDS]
    kitchen = found.players.index("kitchen")
    for i in range(12):
        assert explanation_table(found, i)[0]["input"] == "photo: kitchen"
        others = np.delete(found.effects[i], kitchen)
        assert np.all(np.abs(others) < 1.0), found.effects[i]
        assert abs(found.effects[i, kitchen]) > 100_000  # the kitchen moved it by about +-$167k (x 1M / 3 x 3 / 6)
    assert np.all(found.effects[:6, kitchen] > 0) and np.all(found.effects[6:, kitchen] < 0)
    importance = found.importance()
    assert max(importance, key=importance.get) == "kitchen"


def test_effects_sum_to_the_price_less_the_baseline_house_price_on_a_random_network():
    keras.utils.set_random_seed(3)
    attributes = keras.Input((len(FEATURES),), name="attributes")
    montage = keras.Input((2 * TILE, 2 * TILE, 3), name="montage")
    seen = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(montage))
    joined = keras.layers.Concatenate()([keras.layers.Dense(8, activation="relu")(attributes), seen])
    price = keras.layers.Dense(1)(keras.layers.Dense(8, activation="tanh")(joined))
    model = keras.Model({"attributes": attributes, "montage": montage},
                        keras.layers.Rescaling(1e5, offset=5e5)(price))
    inputs, baseline = _inputs(9, seed=4), _baseline(_inputs(50, seed=5))
    found = explain(_price_of(model), inputs, baseline, FEATURES)
    alone = _price_of(model)(inputs)  # each house priced on its own, not inside the coalition batch
    base = _price_of(model)({"attributes": baseline.attributes[None], "montage": baseline.montage[None]})[0]
    np.testing.assert_allclose(found.prices, alone, atol=TOLERANCE)
    assert found.base_price == pytest.approx(base, abs=TOLERANCE)
    np.testing.assert_allclose(found.effects.sum(axis=1), alone - base, atol=TOLERANCE)
    assert np.abs(found.effects).max() > 100  # not trivially zero
    text = format_explanation(found, 0, "house 1")
    assert "average train house" in text and "photo: kitchen" in text and "= price" in text


def test_effects_are_exact_on_an_additive_price_and_share_an_interaction_equally():
    inputs = {"attributes": np.array([[1, 0, 0, 2.0, 3.0, 5.0]], np.float32)}
    baseline = Baseline(np.array([0, 1, 0, 1.0, 1.0, 1.0], np.float32), np.zeros((2, 2, 3), np.float32))

    def price_of(x):  # $1000 per bedroom, $10 per bathroom squared, area x bedrooms, $7 for zip 90001
        a = x["attributes"].astype(np.float64)
        return 1000 * a[:, 3] + 10 * a[:, 4] ** 2 + 100 * a[:, 5] * a[:, 3] + 7 * a[:, 0]

    found = explain(price_of, inputs, baseline, FEATURES)
    assert found.players == list(ATTRIBUTE_GROUPS)
    effects = dict(zip(found.players, found.effects[0]))
    # area x bedrooms goes from 1 x 1 to 5 x 2 (+900): Shapley gives each its own part and half the cross term
    assert effects["bedrooms"] == pytest.approx(1000 + 100 * (1 * 1 + 0.5 * 4 * 1))
    assert effects["area"] == pytest.approx(100 * (4 * 1 + 0.5 * 4 * 1))
    assert effects["bathrooms"] == pytest.approx(10 * (9 - 1))
    assert effects["zipcode"] == pytest.approx(7)


def test_coalition_weights_are_the_shapley_weights():
    masks, weights = coalitions(3)
    assert masks.shape == (8, 3) and weights.shape == (8, 3)
    np.testing.assert_allclose(weights[masks].sum() + weights[~masks].sum(), 0, atol=1e-12)
    np.testing.assert_allclose(weights[-1], [1 / 3] * 3)  # everyone in: weight (P-1)! 0! / P!
    np.testing.assert_allclose(weights[0], [-1 / 3] * 3)  # no one in
