"""The pinned dependency set runs a real AutoKeras regression search (the reason for its pins:
AutoKeras 3.0.0's regression head fails with keras >= 3.12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow
def test_pinned_set_runs_an_autokeras_regression_search(tmp_path: Path):
    import autokeras as ak
    import keras

    rng = np.random.default_rng(0)
    x = rng.random((64, 5)).astype("float32")
    y = x.sum(axis=1)
    regressor = ak.StructuredDataRegressor(max_trials=1, overwrite=True, directory=str(tmp_path), seed=1)
    regressor.fit(x, y, epochs=1, verbose=0)
    model = regressor.export_model()
    model.save(tmp_path / "best.keras")
    loaded = keras.models.load_model(tmp_path / "best.keras", custom_objects=ak.CUSTOM_OBJECTS, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x[:4], verbose=0), model.predict(x[:4], verbose=0), rtol=1e-5)
    assert keras.__version__ == "3.10.0"
