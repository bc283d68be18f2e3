"""The registered price model as MLflow models-from-code: this file is logged with the model and
run when it is loaded, so nothing is unpickled. It loads `model.keras` in Keras's safe mode with
the JSON encoders and target scale (tasks.price.predict.PriceModel).

Input: one row per house with bedrooms, bathrooms, area, zipcode and, for models that see photos,
photo_frontal, photo_bedroom, photo_bathroom, photo_kitchen: each a file path or the photo itself as
a data URI (`data:image/jpeg;base64,...`). Output: `predicted_price`, `price_low` and `price_high` (the range
at the `interval_level` param, default 0.8), in dollars; with the `explain` param true, also `base_price` and
one `effect_*` column per attribute group and photo (tasks.lifecycle.scoring.price_frame). Over REST:
`{"dataframe_records": [...], "params": {"interval_level": 0.9, "explain": true}}`.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from tasks.lifecycle.scoring import price_frame
from tasks.price.interval import DEFAULT_LEVEL


class HousePriceModel(PythonModel):
    def load_context(self, context) -> None:
        from pathlib import Path

        from tasks.price.predict import PriceModel

        self.price_model = PriceModel.load(Path(context.artifacts["model"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        params = params or {}
        return price_frame(self.price_model, model_input, float(params.get("interval_level", DEFAULT_LEVEL)),
                           bool(params.get("explain", False)))


mlflow.models.set_model(HousePriceModel())
