"""Price new houses with an exported model folder (model.keras, encoders.json, training.json, interval.json,
baseline.json): the price, its calibrated range (tasks.price.interval) and, when asked, how much each attribute
group and photo moved it (tasks.price.explain)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.errors import DataError
from tasks.houses.encoders import encode_attributes
from tasks.houses.ingest import ATTRIBUTE_COLUMNS, PHOTO_KINDS, find_photos
from tasks.houses.montage import house_montage
from tasks.price import explain as explaining
from tasks.price import interval as intervals
from tasks.price.data import STRATEGY_INPUTS, TargetScale
from tasks.training.saved_models import load_keras_model

NEEDED = [c for c in ATTRIBUTE_COLUMNS if c != "price"]


def read_new_houses(path: Path) -> pd.DataFrame:
    """CSV with bedrooms, bathrooms, area, zipcode (and optionally house, for the photo names)."""
    if not path.is_file():
        raise DataError("houses file does not exist", path)
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(f"not a readable CSV file: {error}", path) from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in NEEDED if c not in frame.columns]
    if missing:
        raise DataError(f"CSV header lacks column(s) {', '.join(missing)}; header is {list(frame.columns)}", path, 1)
    for column in NEEDED:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna()
        if bad.any():
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            raise DataError(f"{column} is not a number: {frame[column][bad].iloc[0]!r}", path, line)
        frame[column] = values
    if "house" not in frame.columns:
        frame["house"] = np.arange(1, len(frame) + 1)
    return frame


def _read_json(path: Path, what: str) -> dict:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"{what} is unreadable ({type(error).__name__}); use the model/ folder of a train run, whole",
                        path) from None
    if not isinstance(value, dict):
        raise DataError(f"{what} is not a JSON object; use the model/ folder of a train run", path)
    return value


@dataclass
class PriceModel:
    """A trained price model with what it needs to price new houses: its encoders and target scale."""

    model: object  # keras.Model
    encoders: dict
    strategy: str
    scale: TargetScale
    interval: intervals.Interval | None = None  # None: a model folder from before intervals
    baseline: explaining.Baseline | None = None  # None: a model folder from before explanations

    @classmethod
    def load(cls, folder: Path) -> PriceModel:
        """From a train run's model/ folder (model.keras, encoders.json, training.json), checked to belong together."""
        for name in ("model.keras", "encoders.json", "training.json"):
            if not (folder / name).is_file():
                raise DataError(f"not a model folder: {name} is missing (use the model/ folder of a train run)", folder)
        encoders = _read_json(folder / "encoders.json", "encoders.json")
        training = _read_json(folder / "training.json", "training.json")
        try:
            strategy = training["options"]["strategy"]
            scale = TargetScale(training["target"]["kind"], float(training["target"]["price_max"]))
            inputs = STRATEGY_INPUTS[strategy]
            for name in ("tile_size", "zipcodes", "continuous"):
                encoders[name]
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"training.json or encoders.json lacks {error}; use the model/ folder of a train run",
                            folder) from None
        model = load_keras_model(folder / "model.keras", "price model")
        taken = sorted(model.input.keys()) if isinstance(model.input, dict) else None
        if taken != sorted(inputs):
            raise DataError(f"model.keras takes inputs {taken or 'without names'}, but training.json says a {strategy} "
                            f"model (inputs {sorted(inputs)}): the folder's files come from different runs; use the "
                            "model/ folder of one train run", folder)
        interval = (intervals.Interval.load(folder / intervals.FILE) if (folder / intervals.FILE).is_file()
                    else None)
        baseline = (explaining.Baseline.load(folder / explaining.FILE) if (folder / explaining.FILE).is_file()
                    else None)
        return cls(model, encoders, strategy, scale, interval, baseline)

    def needs_photos(self) -> bool:
        return "montage" in STRATEGY_INPUTS[self.strategy]

    def inputs(self, houses: pd.DataFrame, montages: np.ndarray | None,
               source: Path | None = None) -> dict[str, np.ndarray]:
        """The model's inputs for `houses` (bedrooms, bathrooms, area, zipcode) and their (N, 2t, 2t, 3) uint8
        montages."""
        inputs: dict[str, np.ndarray] = {}
        if "attributes" in STRATEGY_INPUTS[self.strategy]:
            try:
                inputs["attributes"] = encode_attributes(houses, self.encoders)
            except DataError as error:
                raise DataError(error.message, source) from None
        if self.needs_photos():
            inputs["montage"] = np.asarray(montages, np.float32) / 255.0
        return inputs

    def price_of(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Prices (dollars) of model inputs. Up to CHUNK_ROWS rows (one house, or its explanation's coalitions)
        in one direct call: `predict`'s data pipeline and graph tracing cost about a second on a first call."""
        if len(next(iter(inputs.values()))) <= explaining.CHUNK_ROWS:
            return self.scale.to_price(np.asarray(self.model(inputs, training=False)))
        return self.scale.to_price(self.model.predict(inputs, batch_size=explaining.CHUNK_ROWS, verbose=0))

    def predict(self, houses: pd.DataFrame, montages: np.ndarray | None, source: Path | None = None) -> np.ndarray:
        """Prices of `houses` (bedrooms, bathrooms, area, zipcode) with their (N, 2t, 2t, 3) uint8 montages."""
        return self.price_of(self.inputs(houses, montages, source))

    def bounds(self, prices: np.ndarray, level: float = intervals.DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of the level's range around each price; NaN for a model folder without interval.json."""
        if self.interval is None:
            intervals.check_level(level)
            return np.full(len(prices), np.nan), np.full(len(prices), np.nan)
        return self.interval.bounds(prices, level)

    def explain(self, houses: pd.DataFrame, montages: np.ndarray | None,
                source: Path | None = None) -> explaining.Explanation:
        """How much each attribute group and photo moved each house's price (dollars; see tasks.price.explain)."""
        if self.baseline is None:
            raise DataError(f"this model folder has no {explaining.FILE} (it was trained before explanations): "
                            "train it again to explain its prices")
        return explaining.explain(self.price_of, self.inputs(houses, montages, source), self.baseline,
                                  self.encoders["feature_names"])


def photo_paths(houses: pd.DataFrame, photos_dir: Path) -> list[list[Path]]:
    """Each house's four photos `{house}_{room}.jpg` in `photos_dir` (PHOTO_KINDS order)."""
    found = find_photos(photos_dir) if photos_dir.is_dir() else {}
    paths = []
    for number in houses["house"]:
        house = [found.get(int(number), {}).get(kind) for kind in PHOTO_KINDS]
        for kind, path in zip(PHOTO_KINDS, house):
            if path is None:
                raise DataError(f"photo is missing for house {number}: expected {number}_{kind}.jpg", photos_dir)
        paths.append(house)
    return paths


def folder_montages(houses: pd.DataFrame, photos_dir: Path, tile_size: int) -> np.ndarray:
    """(N, 2t, 2t, 3) montages of the houses' four photos `{house}_{room}.jpg` in `photos_dir`."""
    return np.stack([house_montage(paths, tile_size) for paths in photo_paths(houses, photos_dir)])


def predict_new_houses(model_dir: Path, houses_csv: Path, photos_dir: Path | None,
                       level: float = intervals.DEFAULT_LEVEL, explain: bool = False,
                       price_model: PriceModel | None = None) -> tuple[pd.DataFrame, explaining.Explanation | None]:
    """(the houses of a CSV with predicted_price, price_low and price_high: the level's range; with `explain`,
    each house's explanation)."""
    intervals.check_level(level)
    price_model = price_model or PriceModel.load(model_dir)
    houses = read_new_houses(houses_csv)
    montages = None
    if price_model.needs_photos():
        if photos_dir is None:
            raise DataError(f"the {price_model.strategy} model needs photos: pass --photos DIR")
        montages = folder_montages(houses, photos_dir, price_model.encoders["tile_size"])
    prices = price_model.predict(houses, montages, houses_csv)
    low, high = price_model.bounds(prices, level)
    table = houses.assign(predicted_price=np.round(prices, 0), price_low=np.round(low, 0),
                          price_high=np.round(high, 0))
    return table, price_model.explain(houses, montages, houses_csv) if explain else None
