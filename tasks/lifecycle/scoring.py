"""Pricing a table of houses with a registered model, as the MLflow model and batch scoring do it.

A photo is a file path or a data URI (`data:image/jpeg;base64,...`), so one request to the REST
endpoint can carry a house with its photos. Every price comes with its range (`price_low`, `price_high`:
the model's calibrated interval at the asked level, tasks.price.interval) and, when asked, each input's
effect in dollars (`base_price` and `effect_*` columns, tasks.price.explain). Batch scoring writes
predictions as Parquet and CSV with the model version on every row, cached by the content of the model,
the houses and photos, and the level and explain settings.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.core.errors import DataError
from tasks.houses.ingest import PHOTO_KINDS
from tasks.houses.montage import montage_from_bytes
from tasks.price.interval import DEFAULT_LEVEL, check_level
from tasks.price.predict import photo_paths

PHOTO_COLUMNS = [f"photo_{kind}" for kind in PHOTO_KINDS]


def photo_bytes(value: object, row: int, column: str) -> tuple[bytes, str]:
    """(encoded image, name for errors) of a path or data URI."""
    where = f"row {row + 1}, {column}"
    if not isinstance(value, str) or not value:
        raise DataError(f"{where}: expected a photo path or a data:image/...;base64 URI, got {value!r}")
    if value.startswith("data:"):
        try:
            return base64.b64decode(value.split(",", 1)[1], validate=True), where
        except (IndexError, binascii.Error):
            raise DataError(f"{where}: not a base64 data URI (data:image/jpeg;base64,...)") from None
    try:
        return Path(value).read_bytes(), value
    except OSError as error:
        raise DataError(f"{where}: cannot read the photo {value} ({error.strerror})") from None


def price_frame(price_model, houses: pd.DataFrame, level: float = DEFAULT_LEVEL, explain: bool = False) -> pd.DataFrame:
    """`predicted_price`, `price_low`, `price_high` (dollars, rounded; the level's range, NaN for a model without
    an interval) for each row of `houses` (see tasks.lifecycle.price_pyfunc); with `explain`, `base_price` and
    one `effect_*` column per attribute group and photo (they sum to predicted_price - base_price)."""
    check_level(level)
    houses = pd.DataFrame(houses).rename(columns=str.lower)
    montages = None
    if price_model.needs_photos():
        missing = [c for c in PHOTO_COLUMNS if c not in houses.columns]
        if missing:
            raise DataError(f"the {price_model.strategy} model needs photos: columns {', '.join(missing)} are "
                            "missing (a path or a data:image/jpeg;base64 URI each)")
        tile = price_model.encoders["tile_size"]
        montages = np.stack([
            montage_from_bytes([photo_bytes(houses[c].iloc[i], i, c) for c in PHOTO_COLUMNS], tile)
            for i in range(len(houses))])
    if not explain:
        prices = price_model.predict(houses, montages)
        low, high = price_model.bounds(prices, level)
        return pd.DataFrame({"predicted_price": np.round(prices, 0), "price_low": np.round(low, 0),
                             "price_high": np.round(high, 0)})
    explanation = price_model.explain(houses, montages)
    low, high = price_model.bounds(explanation.prices, level)
    effects = {f"effect_{name}": np.round(explanation.effects[:, p], 0) + 0.0  # + 0.0: no "-0"
               for p, name in enumerate(explanation.players)}
    return pd.DataFrame({"predicted_price": np.round(explanation.prices, 0), "price_low": np.round(low, 0),
                         "price_high": np.round(high, 0), "base_price": round(explanation.base_price, 0), **effects})


def with_photo_paths(houses: pd.DataFrame, photos_dir: Path) -> pd.DataFrame:
    """The houses with the paths of their four photos `{house}_{room}.jpg` in `photos_dir`."""
    paths = photo_paths(houses, photos_dir)
    return houses.assign(**{column: [str(house[i]) for house in paths] for i, column in enumerate(PHOTO_COLUMNS)})


def plan_scoring(houses_csv: Path, photos_dir: Path | None, version_tags: dict, level: float = DEFAULT_LEVEL,
                 explain: bool = False) -> tuple:
    """(the houses, with their photo paths when given; the scoring's content key), bad rows refused."""
    from tasks.price.predict import read_new_houses

    check_level(level)
    houses = read_new_houses(houses_csv)
    if photos_dir is not None:
        houses = with_photo_paths(houses, photos_dir)
    return houses, score_key(version_tags, houses_csv, houses if photos_dir is not None else None, level, explain)


def score_key(version_tags: dict, houses_csv: Path, photos: pd.DataFrame | None, level: float = DEFAULT_LEVEL,
              explain: bool = False) -> str:
    """Content key of a scoring: the model's files, the houses file, every photo used, the level, explain."""
    from tasks.core.hashing import digest, file_sha256

    model = sorted((k, v) for k, v in version_tags.items() if k.startswith("sha256."))
    photo_hashes = [] if photos is None else [file_sha256(Path(p)) for c in PHOTO_COLUMNS for p in photos[c]]
    return digest("score", model, file_sha256(houses_csv), photo_hashes, level, explain)


def scored_table(houses: pd.DataFrame, prices: pd.DataFrame, version: int) -> pd.DataFrame:
    """The houses' attributes with the columns of `price_frame` and the model version on every row."""
    from tasks.price.predict import NEEDED

    columns = ["house", *NEEDED]
    return houses[columns].reset_index(drop=True).assign(**{c: prices[c].to_numpy() for c in prices.columns},
                                                         model_version=version)
