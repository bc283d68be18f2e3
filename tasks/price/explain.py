"""Explanations: how much each attribute group and each photo moved a house's price, in dollars.

Players: the attribute groups bedrooms, bathrooms, area and zip code (its one-hot columns together) for the
models that see attributes, and the four photos (tiles of the montage) for those that see photos: 4 or 8.
A player left out takes the baseline's value: the train houses' mean attribute features, and the train
houses' mean tile of that photo kind (occlusion by the mean tile). The effects are the exact Shapley values of
the price over the players: every coalition is priced (2^8 = 256 rows for the mixed model, in one batch), and
each player gets the weighted mean of what adding it changed. So they sum to the house's price less the
baseline house's price (efficiency: exact up to float rounding, checked by the tests to $1), a player the
model ignores gets 0, and interactions are shared fairly. The same method fits every model (MLP, CNN, mixed,
ensembles, Keras Applications backbones): it needs only the model's prices.

Why not a library: SHAP's KernelExplainer with a one-row background estimates these same values by sampling
(exact enumeration is cheaper at 8 players), and its Deep/Gradient explainers target TensorFlow graph mode and
per-feature, not per-group, attributions; shap is not installed here and brings numba and llvmlite.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.core.errors import DataError
from tasks.houses.arrays import iter_split
from tasks.houses.ingest import PHOTO_KINDS
from tasks.houses.montage import TILE_POSITIONS

ATTRIBUTE_GROUPS = ("bedrooms", "bathrooms", "area", "zipcode")
FILE = "baseline.json"
CHUNK_ROWS = 512  # coalition rows priced at once (two houses of a model that sees photos: 2 x 256)


@dataclass(frozen=True)
class Baseline:
    """The 'average train house' that left-out players take: mean features and mean montage."""

    attributes: np.ndarray  # (F,) float32
    montage: np.ndarray  # (2t, 2t, 3) float32 in [0, 1]

    @classmethod
    def from_split(cls, train_path: Path) -> Baseline:
        """Means over the train split, read in chunks (memory does not grow with the data)."""
        total, count = {}, 0
        for arrays in iter_split(train_path, ("attributes", "montage")):
            for name, values in arrays.items():
                total[name] = total.get(name, 0) + values.astype(np.float64).sum(axis=0)
            count += len(arrays["attributes"])
        return cls((total["attributes"] / count).astype(np.float32), (total["montage"] / count).astype(np.float32))

    def to_json(self) -> dict:
        return {"attributes": [round(float(v), 6) for v in self.attributes],
                "montage_shape": list(self.montage.shape),
                "montage": [round(float(v), 5) for v in self.montage.reshape(-1)]}

    @classmethod
    def load(cls, path: Path) -> Baseline:
        try:
            value = json.loads(path.read_text())
            montage = np.asarray(value["montage"], np.float32).reshape(value["montage_shape"])
            return cls(np.asarray(value["attributes"], np.float32), montage)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"{FILE} is unreadable ({type(error).__name__}); use the model/ folder of a train run, "
                            "whole", path) from None

    def save(self, path: Path) -> Path:
        from tasks.core.files import atomic_write_json

        return atomic_write_json(path, self.to_json())


def player_names(inputs: tuple[str, ...]) -> list[str]:
    """The players of a model with these inputs ("attributes", "montage")."""
    return [*(ATTRIBUTE_GROUPS if "attributes" in inputs else ()), *(PHOTO_KINDS if "montage" in inputs else ())]


def _attribute_columns(feature_names: list[str]) -> dict[str, np.ndarray]:
    """Each attribute group's columns of the feature vector."""
    return {group: np.array([i for i, name in enumerate(feature_names)
                             if name == group or (group == "zipcode" and name.startswith("zipcode_"))])
            for group in ATTRIBUTE_GROUPS}


def coalitions(players: int) -> tuple[np.ndarray, np.ndarray]:
    """(masks (2^P, P) bool: who is in each coalition; weights (2^P, P)): Shapley value = weights.T @ f.

    phi_i = sum over S without i of |S|! (P - |S| - 1)! / P! * (f(S + i) - f(S)); so the price of a coalition T
    counts +w(|T| - 1) for each i in T and -w(|T|) for each i not in T."""
    masks = ((np.arange(2 ** players)[:, None] >> np.arange(players)[None, :]) & 1).astype(bool)
    size = masks.sum(axis=1)
    w = np.array([math.factorial(s) * math.factorial(players - s - 1) / math.factorial(players)
                  for s in range(players)] + [0.0])
    weights = np.where(masks, w[np.maximum(size - 1, 0)][:, None], -w[size][:, None])
    return masks, weights


def _coalition_inputs(house: dict[str, np.ndarray], baseline: Baseline, names: list[str], masks: np.ndarray,
                      columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One house's inputs for every coalition: players out take the baseline's values."""
    batch = {}
    if "attributes" in house:
        attributes = np.repeat(baseline.attributes[None, :], len(masks), axis=0)  # (C, F)
        for p, name in enumerate(names):
            if name in columns:
                cols = columns[name]
                attributes[np.ix_(masks[:, p], cols)] = house["attributes"][cols]
        batch["attributes"] = attributes
    if "montage" in house:
        montage = np.repeat(baseline.montage[None], len(masks), axis=0)  # (C, 2t, 2t, 3)
        side = montage.shape[1] // 2
        for p, name in enumerate(names):
            if name in PHOTO_KINDS:
                row, col = TILE_POSITIONS[PHOTO_KINDS.index(name)]
                tile = (slice(row * side, (row + 1) * side), slice(col * side, (col + 1) * side))
                montage[(masks[:, p], *tile)] = house["montage"][tile]
        batch["montage"] = montage
    return batch


@dataclass
class Explanation:
    """Per house: the effect of each player in dollars; they sum to price - base_price."""

    players: list[str]
    effects: np.ndarray  # (N, P) dollars
    base_price: float  # the baseline house's price
    prices: np.ndarray  # (N,) the houses' prices, all players in

    def rows(self) -> list[dict]:
        return [{f"effect_{name}": float(value) for name, value in zip(self.players, effects)}
                for effects in self.effects]

    def importance(self) -> dict[str, float]:
        """Mean absolute effect of each player over the houses (dollars)."""
        return {name: float(np.mean(np.abs(self.effects[:, p]))) for p, name in enumerate(self.players)}


def explain(price_of: Callable[[dict[str, np.ndarray]], np.ndarray], inputs: dict[str, np.ndarray],
            baseline: Baseline, feature_names: list[str]) -> Explanation:
    """Exact Shapley effects of each house of `inputs` (model inputs, N rows) with `price_of` (model inputs ->
    prices in dollars)."""
    names = player_names(tuple(inputs))
    masks, weights = coalitions(len(names))
    columns = _attribute_columns(feature_names)
    per_chunk = max(1, CHUNK_ROWS // len(masks))
    n = len(next(iter(inputs.values())))
    effects, prices, base = np.zeros((n, len(names))), np.zeros(n), []
    for start in range(0, n, per_chunk):
        houses = range(start, min(n, start + per_chunk))
        batches = [_coalition_inputs({k: v[i] for k, v in inputs.items()}, baseline, names, masks, columns)
                   for i in houses]
        priced = np.asarray(price_of({k: np.concatenate([b[k] for b in batches]) for k in inputs}), np.float64)
        priced = priced.reshape(len(batches), len(masks))  # (houses, coalitions)
        effects[start:start + len(batches)] = priced @ weights
        prices[start:start + len(batches)] = priced[:, -1]  # everyone in
        base += priced[:, 0].tolist()  # no one in: the baseline house
    return Explanation(names, effects, float(np.mean(base)) if base else math.nan, prices)


def label(name: str) -> str:
    """How a player is shown: "area", "zip code", "photo: kitchen"."""
    return "zip code" if name == "zipcode" else f"photo: {name}" if name in PHOTO_KINDS else name


def explanation_table(explanation: Explanation, i: int) -> list[dict]:
    """One house's effects, largest first: {"input", "effect"} rows."""
    order = np.argsort(-np.abs(explanation.effects[i]), kind="stable")
    return [{"input": label(explanation.players[p]), "effect": float(explanation.effects[i, p])} for p in order]


def format_explanation(explanation: Explanation, i: int, title: str) -> str:
    """A small text table: the baseline house, each input's effect, the price."""
    lines = [title, f"  {'average train house':<22} ${explanation.base_price:>12,.0f}"]
    for row in explanation_table(explanation, i):
        lines.append(f"  {row['input']:<22} {'+' if row['effect'] >= 0 else '-'}${abs(row['effect']):>11,.0f}")
    lines.append(f"  {'= price':<22} ${explanation.prices[i]:>12,.0f}")
    return "\n".join(lines)
