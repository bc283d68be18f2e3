"""Trainers on a tiny generated dataset (tile 8 -> 16x16 montages), through the real Keras/TF."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from tasks.price.data import TargetScale, load_arrays
from tasks.price.options import PriceOptions
from tasks.price.train import predict_prices, train_model
from tests.conftest import ROOT
from tests.fixtures import kill_after_epoch, make_houses, resumed_run, run_stages


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    data = make_houses(folder / "houses", [90000 + n % 3 for n in range(40)], photo_size=(24, 20))
    _, dataset = run_stages(data, folder / "cache", tile_size=8)
    return dataset


def _train(dataset, tmp_path: Path, **options):
    opts = PriceOptions(**{"epochs": 2, "batch_size": 4, "ensemble": 1, **options})  # one model unless asked
    return train_model(dataset.train_path, dataset.encoders(), opts, tmp_path / "work"), opts


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["mlp", "cnn", "mixed"])
@pytest.mark.parametrize("trainer", ["fit", "stream", "batch", "distributed"])
def test_every_trainer_trains_every_strategy(tiny_dataset, tmp_path, strategy, trainer):
    result, options = _train(tiny_dataset, tmp_path, strategy=strategy, trainer=trainer, validation_fraction=0.2)
    assert result.epochs_run == 2
    assert len(result.history["loss"]) == 2 and len(result.history["val_loss"]) == 2
    assert all(np.isfinite(result.history["loss"]))
    model = keras.models.load_model(result.model_path, safe_mode=True)
    scale = TargetScale(options.target, tiny_dataset.encoders()["price_max"])
    actual, predicted = predict_prices(model, tiny_dataset.test_path, strategy, scale)
    assert predicted.shape == actual.shape and np.all(np.isfinite(predicted))


def test_stream_with_augmentation_trains_on_changed_images(tiny_dataset, tmp_path):
    """Same seed, same data: only the augmentation differs, so the losses must differ (an ignored --augment
    gives the plain run's history to the last digit, as the same-seed test shows)."""
    plain, _ = _train(tiny_dataset, tmp_path / "plain", strategy="cnn", trainer="stream")
    augmented, _ = _train(tiny_dataset, tmp_path / "augmented", strategy="cnn", trainer="stream",
                          augment=["rotation", "zoom", "shift", "flip"])
    assert augmented.epochs_run == 2 and all(np.isfinite(augmented.history["loss"]))
    assert augmented.history["loss"] != plain.history["loss"]


@pytest.mark.slow
def test_same_seed_same_results_on_cpu(tiny_dataset, tmp_path):
    first, _ = _train(tiny_dataset, tmp_path / "a", strategy="mixed", epochs=3)
    second, _ = _train(tiny_dataset, tmp_path / "b", strategy="mixed", epochs=3)
    other, _ = _train(tiny_dataset, tmp_path / "c", strategy="mixed", epochs=3, seed=7)
    assert first.history == second.history
    assert first.history != other.history


def test_an_ensemble_trains_its_members_with_their_own_seeds_and_averages_them(tiny_dataset, tmp_path):
    result, options = _train(tiny_dataset, tmp_path, strategy="mlp", ensemble=2, seed=5)
    work = tmp_path / "work"
    for i in range(2):  # each member is the single model of its seed, trained in its own folder (resumable)
        single, _ = _train(tiny_dataset, tmp_path / f"single-{i}", strategy="mlp", seed=5 + i)
        assert (work / f"member-{i}" / "model.keras").is_file()
        assert keras.models.load_model(work / f"member-{i}" / "model.keras").get_weights()[0].tolist() == \
            keras.models.load_model(single.model_path).get_weights()[0].tolist()
    scale = TargetScale(options.target, tiny_dataset.encoders()["price_max"])
    members = [predict_prices(keras.models.load_model(work / f"member-{i}" / "model.keras"), tiny_dataset.test_path,
                              "mlp", scale)[1] for i in range(2)]
    _, ensemble = predict_prices(keras.models.load_model(result.model_path, safe_mode=True), tiny_dataset.test_path,
                                 "mlp", scale)
    np.testing.assert_allclose(ensemble, np.exp(np.mean(np.log(members), axis=0)), rtol=1e-4)  # geometric mean
    assert result.epochs_run == 2 and len(result.history["loss"]) == 2


def test_batch_loop_honours_early_stopping(tiny_dataset, tmp_path):
    result, _ = _train(tiny_dataset, tmp_path, strategy="mlp", trainer="batch", epochs=200,
                       learning_rate=0.5, early_stopping=2)
    assert result.epochs_run < 200
    assert result.best_epoch == result.epochs_run - 2


def test_validation_rows_are_held_out(tiny_dataset, tmp_path):
    result, _ = _train(tiny_dataset, tmp_path, validation_fraction=0.25)
    assert result.n_train + result.n_validation == tiny_dataset.n_train
    assert result.n_validation == round(0.25 * tiny_dataset.n_train)


def test_cnn_inputs_are_scaled_montages(tiny_dataset):
    x, y, prices = load_arrays(tiny_dataset.train_path, "mixed", TargetScale("log", 1.0))
    assert x["montage"].shape == (tiny_dataset.n_train, 16, 16, 3)
    assert 0 <= x["montage"].min() and x["montage"].max() <= 1
    np.testing.assert_allclose(np.exp(y), prices, rtol=1e-5)


RESUMABLE = """
import sys
from pathlib import Path
from tasks.price.train import train_model
from tasks.price.options import PriceOptions
from tasks.houses.dataset import Dataset
import json
folder = Path(sys.argv[1])
encoders = json.loads((folder / "encoders.json").read_text())
options = PriceOptions(strategy="mlp", epochs=int(sys.argv[3]), batch_size=4)
result = train_model(folder / "train.parquet", encoders, options, Path(sys.argv[2]))
print("RESUMED_FROM", result.resumed_from_epoch, "EPOCHS", result.epochs_run, "HISTORY", len(result.history["loss"]))
"""


@pytest.mark.slow
def test_killed_training_resumes_from_the_last_epoch(tiny_dataset, tmp_path):
    work = tmp_path / "work"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-c", RESUMABLE, str(tiny_dataset.folder), str(work), "60"]
    done_before = kill_after_epoch(command, work, 3, env, timeout=120)
    assert 3 <= done_before < 60

    finished = resumed_run(command, env)
    assert finished["RESUMED_FROM"] >= done_before
    assert finished["EPOCHS"] == 60
    assert finished["HISTORY"] == 60  # one history entry per epoch, none repeated


DISTRIBUTED = """
import json, logging, sys
logging.basicConfig(level=logging.INFO)
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tasks.price.train import train_model
from tasks.price.options import PriceOptions
folder = Path(sys.argv[1])
encoders = json.loads((folder / "encoders.json").read_text())
options = PriceOptions(strategy="mixed", trainer="distributed", epochs=2, batch_size=4)
result = train_model(folder / "train.parquet", encoders, options, Path(sys.argv[2]))
print("REPLICAS", result.replicas, "EPOCHS", result.epochs_run)
"""


@pytest.mark.slow
def test_distributed_uses_two_logical_cpu_devices(tiny_dataset, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-c", DISTRIBUTED, str(tiny_dataset.folder), str(tmp_path / "w")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "REPLICAS 2 EPOCHS 2" in result.stdout
    assert "MirroredStrategy over 2 logical CPU devices" in result.stderr


def test_strategy_defaults_fill_only_what_was_not_given(monkeypatch):
    from tasks.price import options as training_options

    monkeypatch.setitem(training_options.STRATEGY_DEFAULTS, "cnn", {"batch_size": 32})
    assert PriceOptions(strategy="cnn").batch_size == 32
    assert PriceOptions(strategy="cnn", batch_size=4).batch_size == 4
    assert PriceOptions(strategy="mlp").batch_size == 8


def test_the_stable_cnn_averages_three_models_and_the_others_train_one():
    """Chosen by cross-validation (issue 28, tasks/price/options.py); a value given still wins."""
    assert PriceOptions(strategy="cnn").ensemble == 3 and PriceOptions(strategy="cnn", ensemble=1).ensemble == 1
    assert PriceOptions(strategy="cnn", recipe="tutorials").ensemble == 1
    assert PriceOptions(strategy="mlp").ensemble == 1 and PriceOptions(strategy="mixed").ensemble == 1


def test_the_tutorials_recipe_is_one_option_and_an_option_given_still_wins():
    from tasks.price.options import TUTORIALS

    for strategy in ("mlp", "cnn", "mixed"):
        tutorials = PriceOptions(strategy=strategy, recipe="tutorials")
        assert {name: getattr(tutorials, name) for name in TUTORIALS} == TUTORIALS
    assert PriceOptions(strategy="cnn", recipe="tutorials", epochs=5).epochs == 5
    with pytest.raises(ValueError, match="price-mape .* reads the prediction as a log price"):
        PriceOptions(strategy="cnn", loss="price-mape", target="scaled")


def test_configs_pass_strategy_defaults_through():
    from flows.config import CompareConfig, TrainConfig

    assert TrainConfig(strategy="cnn").training_options().loss == "price-mape"
    assert TrainConfig(strategy="cnn", loss="huber").training_options().loss == "huber"
    assert TrainConfig(strategy="mlp").training_options().loss == "mape"
    compare = CompareConfig(epochs=3)
    assert compare.training_options("cnn", "fit").loss == "price-mape"
    assert compare.training_options("cnn", "stream").epochs == 3


def test_early_stopping_keeps_a_validation_share():
    # mlp and cnn fit on every train house by default; asking for early stopping brings the share back
    assert PriceOptions(strategy="cnn").validation_fraction == 0
    assert PriceOptions(strategy="cnn", early_stopping=5).validation_fraction == 0.1
    with pytest.raises(ValueError, match="early stopping watches the validation houses"):
        PriceOptions(strategy="mlp", early_stopping=5, validation_fraction=0)


@pytest.mark.parametrize("strategy", ["mlp", "mixed"])
def test_streaming_from_the_split_file_trains_as_fit_does_in_memory(tiny_dataset, tmp_path, strategy):
    """One batch per epoch (the batch holds every train house): the order the rows come in, the one thing the
    stream's shuffle buffer does differently from fit's shuffle, cannot matter beyond float summation order.
    Without dropout: its masks are drawn differently when batches come from tf.data (README: Scaling out)."""
    same = dict(strategy=strategy, epochs=2, batch_size=64, dropout=0.0)  # later epochs amplify float noise
    fit, options = _train(tiny_dataset, tmp_path / "fit", trainer="fit", **same)
    stream, _ = _train(tiny_dataset, tmp_path / "stream", trainer="stream", **same)
    np.testing.assert_allclose(stream.history["loss"], fit.history["loss"], rtol=1e-3)
    scale = TargetScale(options.target, tiny_dataset.encoders()["price_max"])
    predicted = [predict_prices(keras.models.load_model(r.model_path, safe_mode=True), tiny_dataset.test_path,
                                strategy, scale)[1] for r in (fit, stream)]
    np.testing.assert_allclose(predicted[1], predicted[0], rtol=1e-3)
