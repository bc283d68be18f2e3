"""`predict` on new houses gives the prices the model gives the same houses in the dataset, for every
strategy and for a model with a Keras Applications backbone (loaded in a fresh process); each price with its
range, and with `--explain` each input's effect, summing to the price less the average train house's."""

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
from tasks.lifecycle.scoring import price_frame, with_photo_paths
from tasks.price.data import TargetScale
from tasks.price.evaluate import export_model
from tasks.price.explain import Baseline
from tasks.price.interval import Interval
from tasks.price.options import PriceOptions
from tasks.price.predict import PriceModel, predict_new_houses
from tasks.price.train import predict_prices, train_model
from tasks.training.saved_models import load_keras_model
from tests.conftest import ROOT
from tests.fixtures import make_houses, run_stages

STRATEGIES = {"mlp": {}, "mixed": {}, "cnn-vgg16": {"strategy": "cnn", "backbone": "vgg16", "weights": "none",
                                                          "ensemble": 1}}


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
        # the range from the train houses' own errors (a stand-in for the out-of-fold ones `train` uses)
        scale = TargetScale(options.target, dataset.encoders()["price_max"])
        interval = Interval.calibrate(*predict_prices(load_keras_model(result.model_path), dataset.train_path,
                                                      options.strategy, scale), folds=1)
        models[name] = export_model(result.model_path, dataset, options, folder / f"model-{name}", interval,
                                    Baseline.from_split(dataset.train_path))
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
    """The predicted_price column of the printed table (the first dollar figure of each of its lines)."""
    table = stdout.split("\n\n")[0].splitlines()
    return [float(found.group(1).replace(",", "")) for line in table if (found := re.search(r"\$([\d,]+)", line))]


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


@pytest.mark.parametrize("name", ["mlp", "mixed"])
def test_each_price_has_its_range_and_an_explanation_that_adds_up(trained, tmp_path, capsys, name):
    dataset, houses, models = trained
    csv, photos = _new_houses(dataset, houses, tmp_path)
    table, explanation = predict_new_houses(models[name], csv, photos, 0.8, explain=True)
    assert np.all(table["price_low"] <= table["predicted_price"]) and np.all(
        table["predicted_price"] <= table["price_high"]) and np.all(table["price_low"] < table["price_high"])
    wider, _ = predict_new_houses(models[name], csv, photos, 0.95)
    assert np.all(wider["price_high"] >= table["price_high"]) and np.all(wider["price_low"] <= table["price_low"])
    np.testing.assert_allclose(explanation.prices, _expected(dataset, models[name], STRATEGIES[name]), atol=1)
    np.testing.assert_allclose(explanation.effects.sum(axis=1), explanation.prices - explanation.base_price, atol=1)
    assert len(explanation.players) == (4 if name == "mlp" else 8)
    assert main(["predict", "--model", str(models[name]), "--house", str(csv), "--photos", str(photos),
                 "--explain"]) == 0
    out = capsys.readouterr().out
    assert out.count(": why $") == dataset.n_test and out.count("average train house") == dataset.n_test
    assert ("photo: kitchen" in out) == (name == "mixed") and "zip code" in out and "Priced and explained" in out
    # score and the REST answer: the same prices, ranges and effects, as columns
    model = PriceModel.load(models[name])
    frame = price_frame(model, with_photo_paths(pd.read_csv(csv), photos), 0.8, explain=True)
    np.testing.assert_allclose(frame["predicted_price"], table["predicted_price"], atol=1)
    np.testing.assert_allclose(frame["price_high"], table["price_high"], atol=1)
    effects = frame[[f"effect_{p}" for p in explanation.players]].to_numpy()
    np.testing.assert_allclose(effects.sum(axis=1), frame["predicted_price"] - frame["base_price"],
                               atol=len(explanation.players) + 1)  # each column rounded to the dollar
    assert list(price_frame(model, with_photo_paths(pd.read_csv(csv), photos)).columns) == [
        "predicted_price", "price_low", "price_high"]


def test_a_bad_level_is_one_line_naming_the_option(trained, tmp_path, capsys):
    dataset, houses, models = trained
    csv, photos = _new_houses(dataset, houses, tmp_path)
    code = main(["predict", "--model", str(models["mlp"]), "--house", str(csv), "--interval-level", "80"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("error: --interval-level 80")


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
