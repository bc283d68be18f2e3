"""Price new houses with an exported model folder (model.keras, encoders.json, training.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.errors import DataError
from tasks.houses.encoders import encode_attributes
from tasks.houses.ingest import ATTRIBUTE_COLUMNS, PHOTO_KINDS, find_photos
from tasks.houses.montage import house_montage
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


def predict_new_houses(model_dir: Path, houses_csv: Path, photos_dir: Path | None) -> pd.DataFrame:
    for name in ("model.keras", "encoders.json", "training.json"):
        if not (model_dir / name).is_file():
            raise DataError(f"not a model folder: {name} is missing (use the model/ folder of a train run)", model_dir)
    encoders = json.loads((model_dir / "encoders.json").read_text())
    training = json.loads((model_dir / "training.json").read_text())
    strategy = training["options"]["strategy"]
    houses = read_new_houses(houses_csv)
    inputs: dict[str, np.ndarray] = {}
    if "attributes" in STRATEGY_INPUTS[strategy]:
        try:
            inputs["attributes"] = encode_attributes(houses, encoders)
        except DataError as error:
            raise DataError(error.message, houses_csv) from None
    if "montage" in STRATEGY_INPUTS[strategy]:
        if photos_dir is None:
            raise DataError(f"the {strategy} model needs photos: pass --photos DIR")
        found = find_photos(photos_dir) if photos_dir.is_dir() else {}
        montages = []
        for number in houses["house"]:
            paths = [found.get(int(number), {}).get(kind) for kind in PHOTO_KINDS]
            for kind, path in zip(PHOTO_KINDS, paths):
                if path is None:
                    raise DataError(f"photo is missing for house {number}: expected {number}_{kind}.jpg",
                                    photos_dir)
            montages.append(house_montage(paths, encoders["tile_size"]))
        inputs["montage"] = np.stack(montages).astype(np.float32) / 255.0
    model = load_keras_model(model_dir / "model.keras", "price model")
    scale = TargetScale(training["target"]["kind"], training["target"]["price_max"])
    prices = scale.to_price(model.predict(inputs, verbose=0))
    return houses.assign(predicted_price=np.round(prices, 0))
