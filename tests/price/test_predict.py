"""`predict` on new houses gives the prices the model gives the same houses in the dataset, for every
strategy and for a model with a Keras Applications backbone (loaded in a fresh process)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from flows.__main__ import main
from tasks.houses.arrays import read_split
from tasks.houses.ingest import PHOTO_KINDS
from tasks.price.data import TargetScale
from tasks.price.evaluate import export_model
from tasks.price.options import PriceOptions
from tasks.price.train import predict_prices, train_model
from tasks.training.saved_models import load_keras_model
from tests.conftest import ROOT
from tests.fixtures import make_houses, run_stages

STRATEGIES = {"mlp": {}, "mixed": {}, "cnn-vgg16": {"strategy": "cnn", "backbone": "vgg16", "weights": "none"}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny dataset, its houses folder, and an exported model folder per strategy."""
    folder = tmp_path_factory.mktemp("predict")
    houses = make_houses(folder / "houses", [90000 + n % 3 for n in range(24)], photo_size=(24, 20))
    _, dataset = run_stages(houses, folder / "cache", tile_size=8)
    models = {}
    for name, extra in STRATEGIES.items():
        options = PriceOptions(**{"strategy": name, "epochs": 2, "batch_size": 4, **extra})
        result = train_model(dataset.train_path, dataset.encoders(), options, folder / f"work-{name}")
        models[name] = export_model(result.model_path, dataset, options, folder / f"model-{name}")
    return dataset, houses, models


def _new_houses(dataset, houses, folder):
    """The test houses written as a user would bring them: a CSV (no price) and their photos."""
    test = read_split(dataset.test_path, ("house",))["house"]
    table = pd.read_csv(houses / "HousesInfo.txt", sep=" ", header=None,
                        names=["bedrooms", "bathrooms", "area", "zipcode", "price"])
    rows = table.iloc[test - 1].drop(columns="price").assign(house=test)
    photos = folder / "photos"
    photos.mkdir()
    for number in test:
        for kind in PHOTO_KINDS:
            shutil.copyfile(houses / f"{number}_{kind}.jpg", photos / f"{number}_{kind}.jpg")
    rows.to_csv(folder / "new.csv", index=False)
    return folder / "new.csv", photos


def _printed_prices(stdout: str) -> list[float]:
    return [float(value.replace(",", "")) for value in re.findall(r"\$([\d,]+)", stdout)]


def _expected(dataset, model_folder, options: dict) -> np.ndarray:
    import json

    training = json.loads((model_folder / "training.json").read_text())
    scale = TargetScale(training["target"]["kind"], training["target"]["price_max"])
    model = load_keras_model(model_folder / "model.keras")
    return np.round(predict_prices(model, dataset.test_path, training["options"]["strategy"], scale)[1])


@pytest.mark.parametrize("name", ["mlp", "mixed"])
def test_predict_gives_the_dataset_prices(trained, tmp_path, capsys, name):
    dataset, houses, models = trained
    csv, photos = _new_houses(dataset, houses, tmp_path)
    assert main(["predict", "--model", str(models[name]), "--house", str(csv), "--photos", str(photos)]) == 0
    printed = _printed_prices(capsys.readouterr().out)
    expected = _expected(dataset, models[name], STRATEGIES[name])
    assert len(printed) == dataset.n_test and np.all(np.isfinite(printed))
    np.testing.assert_allclose(printed, expected, rtol=1e-4)


@pytest.mark.slow
def test_a_backbone_model_loads_in_a_fresh_process(trained, tmp_path):
    """The backbone's preprocessing layer must be registered on predict's own path, not only by training."""
    dataset, houses, models = trained
    csv, photos = _new_houses(dataset, houses, tmp_path)
    result = subprocess.run([sys.executable, "-m", "flows", "predict", "--model", models["cnn-vgg16"], "--house", csv,
                             "--photos", photos], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-1500:]
    np.testing.assert_allclose(_printed_prices(result.stdout), _expected(dataset, models["cnn-vgg16"], {}), rtol=1e-4)
