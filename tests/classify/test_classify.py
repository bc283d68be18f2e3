"""Multi-label and multi-output classification: data, encoding, models, backbones, flow and CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd
import pytest

from tasks.classify import models as classifier_models
from tasks.classify.encoding import LabelEncoding
from tasks.classify.house_labels import house_label_table, write_house_labels
from tasks.classify.images import build_labelled_images, read_folder_layout, read_manifest
from tasks.classify.options import ClassifierOptions
from tasks.classify.train import build_classifier, train_classifier
from tasks.core.cache import Cache
from tasks.core.errors import DataError
from tasks.training import backbones
from tests.fixtures import assert_plot, kill_after_epoch, make_houses, read_artifact, resumed_run

COLORS = {"red": (0, 0, 230), "blue": (230, 0, 0)}  # BGR


def draw_shape(path: Path, color: str, category: str, seed: int, size: int = 32) -> None:
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 200, np.uint8) + rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    center = tuple(int(v) for v in rng.integers(size // 3, 2 * size // 3, 2))
    radius = int(rng.integers(size // 6, size // 4))
    if category == "circle":
        cv2.circle(image, center, radius, COLORS[color], -1)
    else:
        cv2.rectangle(image, (center[0] - radius, center[1] - radius), (center[0] + radius, center[1] + radius),
                      COLORS[color], -1)
    assert cv2.imwrite(str(path), image)


def make_shapes(folder: Path, per_class: int = 8) -> Path:
    """The tutorials' layout: red_circle/, red_square/, blue_circle/, blue_square/ (color_category)."""
    for c, color in enumerate(COLORS):
        for k, category in enumerate(("circle", "square")):
            sub = folder / f"{color}_{category}"
            sub.mkdir(parents=True)
            for i in range(per_class):
                draw_shape(sub / f"{i}.png", color, category, seed=100 * c + 10 * k + i)
    return folder


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return make_shapes(tmp_path_factory.mktemp("shapes") / "shapes")


def fit_options(**overrides) -> ClassifierOptions:
    return ClassifierOptions(**{"epochs": 2, "batch_size": 8, "image_size": 32, **overrides})


# --- data --------------------------------------------------------------------------------------

def test_folder_layout_gives_one_column_per_name_part(shapes):
    table = read_folder_layout(shapes, ["color", "category"])
    assert len(table) == 32
    assert set(zip(table["color"], table["category"])) == {("red", "circle"), ("red", "square"),
                                                           ("blue", "circle"), ("blue", "square")}
    with pytest.raises(DataError, match="--label-names"):
        read_folder_layout(shapes, ["color", "category", "size"])


def test_manifest_errors_name_the_line(tmp_path):
    manifest = tmp_path / "labels.csv"
    manifest.write_text("file,color\na.png,red\n")
    with pytest.raises(DataError, match=r"labels.csv:1: manifest header lacks a 'path' column"):
        read_manifest(manifest)
    manifest.write_text("path,color,split\na.png,red,train\nb.png,,train\nc.png,blue,later\n")
    with pytest.raises(DataError) as caught:
        read_manifest(manifest)
    assert "labels.csv:3: empty label(s): color" in str(caught.value)
    assert "labels.csv:4: split must be train or test, got 'later'" in str(caught.value)


def test_labelled_images_are_cached_and_an_edited_image_is_redone(shapes, tmp_path):
    folder = tmp_path / "shapes"
    folder.mkdir()
    for sub in shapes.iterdir():
        (folder / sub.name).mkdir()
        for image in sub.iterdir():
            (folder / sub.name / image.name).write_bytes(image.read_bytes())
    cache = Cache(tmp_path / "cache")
    first = build_labelled_images(cache, folder, ["color", "category"], 16, 0.25, 1)
    again = build_labelled_images(cache, folder, ["color", "category"], 16, 0.25, 1)
    assert first.computed and not again.computed and again.folder == first.folder
    assert first.n_train + first.n_test == 32 and first.n_test == 8
    draw_shape(folder / "red_circle" / "0.png", "red", "circle", seed=999)
    assert build_labelled_images(cache, folder, ["color", "category"], 16, 0.25, 1).computed


def test_bad_image_stops_the_run_or_is_skipped(shapes, tmp_path):
    manifest = tmp_path / "labels.csv"
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rows = [f"{p},{p.parent.name.split('_')[0]},{p.parent.name.split('_')[1]}" for p in sorted(shapes.rglob("*.png"))]
    manifest.write_text("path,color,category\n" + "\n".join(rows + [f"{bad},red,circle"]) + "\n")
    with pytest.raises(DataError, match="bad.png: cannot decode this image") as refused:
        build_labelled_images(Cache(tmp_path / "c1"), manifest, [], 16, 0.25, 1, "fail")
    assert "--on-bad-image skip" in str(refused.value) and "--on-bad-house" not in str(refused.value)
    missing = tmp_path / "gone.png"
    manifest.write_text(manifest.read_text() + f"{missing},blue,circle\n")
    with pytest.raises(DataError, match="gone.png: image not found") as refused:
        build_labelled_images(Cache(tmp_path / "c1"), manifest, [], 16, 0.25, 1, "fail")
    assert "--on-bad-image skip" in str(refused.value) and "--on-bad-house" not in str(refused.value)
    manifest.write_text("\n".join(manifest.read_text().splitlines()[:-1]) + "\n")
    images = build_labelled_images(Cache(tmp_path / "c2"), manifest, [], 16, 0.25, 1, "skip")
    assert [s["path"] for s in images.skipped] == [str(bad)]
    assert images.n_train + images.n_test == 32


def test_house_labels_split_by_house_with_train_terciles(tmp_path):
    data = make_houses(tmp_path / "houses", [90001] * 12)
    table, summary = house_label_table(data, test_size=0.25, seed=3)
    assert len(table) == 48 and set(table["room"]) == {"bathroom", "bedroom", "frontal", "kitchen"}
    assert table.groupby("group")["split"].nunique().max() == 1  # a house's four photos stay together
    assert summary["test_houses"] == 3
    prices = {n: 100000 + 5000 * n for n in range(1, 13)}  # make_houses' prices
    train_prices = [prices[g] for g in table.loc[table["split"] == "train", "group"].unique()]
    assert summary["tier_thresholds"] == pytest.approx(list(np.quantile(train_prices, [1 / 3, 2 / 3])))
    low = table[(table["split"] == "train") & (table["price_tier"] == "low")]["group"].unique()
    assert all(prices[g] <= summary["tier_thresholds"][0] for g in low)
    manifest = write_house_labels(data, tmp_path / "out" / "labels.csv", 0.25, 3)
    assert manifest["photos"] == 48
    read_back = read_manifest(tmp_path / "out" / "labels.csv")
    assert all(Path(p).is_file() for p in read_back["path"])


# --- encoding and models -----------------------------------------------------------------------

def test_label_encoding_round_trips_through_json():
    table = pd.DataFrame({"color": ["red", "blue", "red"], "category": ["dress", "jeans", "jeans"]})
    for kind in ("multilabel", "multioutput"):
        encoding = LabelEncoding.fit(table, ["color", "category"], kind)
        restored = LabelEncoding.from_json(json.loads(json.dumps(encoding.to_json())))
        assert restored == encoding
        encoded = restored.encode(table)
        decoded = restored.decode(encoded)
        assert [d["columns"]["color"][0] for d in decoded] == ["red", "blue", "red"]
        assert [d["columns"]["category"][0] for d in decoded] == ["dress", "jeans", "jeans"]
    multilabel = LabelEncoding.fit(table, ["color", "category"], "multilabel")
    assert multilabel.to_json()["classes"] == ["blue", "dress", "jeans", "red"]
    assert multilabel.encode(table).tolist()[0] == [0, 1, 0, 1]  # red dress
    assert [label for label, _ in multilabel.decode(multilabel.encode(table))[1]["labels"]] == ["blue", "jeans"]
    clash = pd.DataFrame({"a": ["x", "y"], "b": ["x", "z"]})
    with pytest.raises(DataError, match="'x' appears in columns a and b"):
        LabelEncoding.fit(clash, ["a", "b"], "multilabel")


def test_multioutput_has_one_named_head_per_column_with_its_loss_and_weight():
    model = classifier_models.build_multioutput(32, {"category": 3, "color": 4}, gray_output="category")
    classifier_models.compile_classifier(model, "multioutput", 1e-3, 10, {"category": 2.0})
    assert set(model.output) == {"category", "color"}
    assert model.output["category"].shape == (None, 3) and model.output["color"].shape == (None, 4)
    assert model.loss == {"category": "categorical_crossentropy", "color": "categorical_crossentropy"}
    assert model._compile_config.config["loss_weights"] == {"category": 2.0, "color": 1.0}
    gray = [layer for layer in model.layers if isinstance(layer, classifier_models.Grayscale)]
    assert [layer.name for layer in gray] == ["category_grayscale"]
    image = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    expected = image[..., 0] * 0.114 + image[..., 1] * 0.587 + image[..., 2] * 0.299
    np.testing.assert_allclose(np.asarray(gray[0](image))[..., 0], expected, rtol=1e-5)
    with pytest.raises(DataError, match="not outputs"):
        classifier_models.compile_classifier(model, "multioutput", 1e-3, 10, {"size": 1.0})


@pytest.mark.parametrize("kind", ["multilabel", "multioutput"])
def test_trained_classifier_saves_and_loads_with_safe_mode(kind, shapes, tmp_path):
    images = build_labelled_images(Cache(tmp_path / "cache"), shapes, ["color", "category"], 32, 0.25, 1)
    encoding = LabelEncoding.fit(images.table(images.label_columns), images.label_columns, kind)
    result = train_classifier(images, encoding, fit_options(kind=kind), tmp_path / "work")
    assert result.epochs_run == 2 and "loss" in result.history
    loaded = keras.models.load_model(result.model_path, safe_mode=True)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    original = build_classifier(fit_options(kind=kind), encoding, 32)
    original.set_weights(loaded.get_weights())
    before, after = original.predict({"image": x}, verbose=0), loaded.predict({"image": x}, verbose=0)
    if kind == "multilabel":
        np.testing.assert_allclose(before, after, rtol=1e-5)
    else:
        for head in ("color", "category"):
            np.testing.assert_allclose(before[head], after[head], rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["fit", "stream", "batch", "distributed"])
def test_classifier_trains_under_other_trainers(trainer, shapes, tmp_path):
    images = build_labelled_images(Cache(tmp_path / "cache"), shapes, ["color", "category"], 32, 0.25, 1)
    encoding = LabelEncoding.fit(images.table(images.label_columns), images.label_columns, "multioutput")
    result = train_classifier(images, encoding, fit_options(trainer=trainer), tmp_path / "work")
    assert result.epochs_run == 2 and len(result.history["val_loss"]) == 2
    per_head = {"color_loss", "category_loss"} <= set(result.history)
    assert per_head == (trainer != "batch")  # the train_on_batch loop logs the total loss only


def test_backbone_with_random_weights_builds_saves_and_loads(tmp_path):
    model = classifier_models.build_multilabel(32, 3, backbone="vgg16", weights="none")
    network = model.get_layer("features_vgg16")
    assert not network.trainable and model.output.shape == (None, 3)
    model.save(tmp_path / "vgg.keras")
    loaded = keras.models.load_model(tmp_path / "vgg.keras", safe_mode=True)
    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict({"image": x}, verbose=0), loaded.predict({"image": x}, verbose=0),
                               rtol=1e-5)
    tuned = classifier_models.build_multilabel(32, 3, backbone="vgg16", weights="none", fine_tune_layers=4)
    network = tuned.get_layer("features_vgg16")
    trainable = [layer.name for layer in network.layers if layer.trainable]
    assert trainable == [layer.name for layer in network.layers[-4:]] and "block5_conv3" in trainable
    assert len(tuned.trainable_weights) == 2 * 2 + 2  # block5_conv2 and conv3 (kernel, bias) + the head


def test_backbone_weights_from_a_local_file_are_loaded(tmp_path):
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    path = tmp_path / "vgg16_notop.weights.h5"
    source.save_weights(path)
    model = classifier_models.build_multilabel(32, 2, backbone="vgg16", weights=str(path))
    for mine, theirs in zip(model.get_layer("features_vgg16").get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_missing_imagenet_weights_is_a_clear_error_not_a_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(DataError) as caught:
        classifier_models.build_multilabel(32, 2, backbone="resnet50", weights="imagenet")
    message = str(caught.value)
    assert str(tmp_path / "keras" / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5") in message
    assert "storage.googleapis.com/tensorflow/keras-applications/resnet/" in message
    with pytest.raises(DataError, match="weights file not found"):
        backbones.resolve_weights("vgg16", str(tmp_path / "nope.h5"))
    with pytest.raises(DataError, match="inceptionv3 needs images of at least 75 px"):
        classifier_models.build_multilabel(32, 2, backbone="inceptionv3", weights="none")


def test_house_price_cnn_branch_takes_a_backbone():
    from tasks.price.options import PriceOptions
    from tasks.price.train import build_model

    options = PriceOptions(strategy="mixed", backbone="vgg16", weights="none")
    model = build_model(options, n_features=5, side=16, output_bias=0.0)
    assert model.get_layer("cnn_resize").output.shape == (None, 32, 32, 3)  # up to VGG16's minimum
    assert model.get_layer("cnn_vgg16") is not None and model.output.shape == (None, 1)


# --- flow and CLI ------------------------------------------------------------------------------

@pytest.mark.slow
def test_classify_cli_trains_both_kinds_and_predict_labels_draws(run_cli, prefect_api, shapes, tmp_path):
    common = ("--data", shapes, "--cache", tmp_path / "cache", "--image-size", "32", "--epochs", "3",
              "--batch-size", "8")
    multi = run_cli("classify", *common, "--kind", "multioutput", "--loss-weights", "category=1,color=2",
                    "--out", tmp_path / "mo")
    assert "Test accuracy color:" in multi.stdout and "Test accuracy category:" in multi.stdout
    metrics = json.loads((tmp_path / "mo" / "metrics.json").read_text())
    assert set(metrics["columns"]) == {"color", "category"} and metrics["n_test"] == 8
    for name, column in metrics["columns"].items():
        confusion = np.array(column["confusion"])
        assert confusion.sum() == 8 and confusion.sum(axis=1).tolist() == [4, 4]  # the split's 4 + 4 images
        assert column["accuracy"] == pytest.approx(np.trace(confusion) / 8)
        assert f"Test accuracy {name}: {column['accuracy']:.3f}" in multi.stdout
    for plot in ("curves.png", "confusion_color.png", "confusion_category.png"):
        assert_plot(tmp_path / "mo" / "plots" / plot)
    table = json.loads(read_artifact(prefect_api, "classify-accuracy").data)
    assert {row["column"]: row["accuracy"] for row in table} == {
        name: round(column["accuracy"], 4) for name, column in metrics["columns"].items()}
    assert "confusion matrix: color" in read_artifact(prefect_api, "classify-report").data

    label = run_cli("classify", *common, "--kind", "multilabel", "--out", tmp_path / "ml")
    assert "Exact match:" in label.stdout
    report = (tmp_path / "ml" / "report.md").read_text()
    assert "### Per label" in report and "Exact match" in report
    labels = json.loads((tmp_path / "ml" / "model" / "labels.json").read_text())
    assert labels["classes"] == ["blue", "circle", "red", "square"] and labels["image_size"] == 32

    image = shapes / "red_square" / "0.png"
    result = run_cli("predict-labels", "--model", tmp_path / "mo" / "model", image, "--draw", tmp_path / "drawn")
    assert f"{image}:" in result.stdout and "color:" in result.stdout and "category:" in result.stdout
    drawn = cv2.imread(str(tmp_path / "drawn" / "0.png"))
    assert drawn is not None and drawn.shape[1] == 400

    refused = run_cli("predict-labels", "--model", tmp_path / "nowhere", image, check=False)
    assert refused.returncode == 2 and f"--model {tmp_path / 'nowhere'}: no such folder" in refused.stderr
    refused = run_cli("predict-labels", "--model", tmp_path, image, check=False)
    assert refused.returncode == 2 and "not a classifier folder" in refused.stderr
    bad_weights = run_cli("classify", *common, "--loss-weights", "color", check=False)
    assert bad_weights.returncode == 2 and "expected NAME=NUMBER" in bad_weights.stderr


@pytest.mark.slow
def test_classify_cli_on_house_photos_by_default(run_cli, tmp_path):
    houses = make_houses(tmp_path / "houses", [90001] * 12, photo_size=(24, 20))
    result = run_cli("classify", "--houses", houses, "--cache", tmp_path / "cache", "--out", tmp_path / "run",
                     "--epochs", "1", "--image-size", "16", "--batch-size", "8")
    assert "Test accuracy room:" in result.stdout and "Test accuracy price_tier:" in result.stdout
    report = (tmp_path / "run" / "report.md").read_text()
    assert "split by house" in report and "chance (1/classes)" in report


RESUMABLE = """
import sys
from pathlib import Path
from tasks.classify.encoding import LabelEncoding
from tasks.classify.images import build_labelled_images
from tasks.classify.options import ClassifierOptions
from tasks.classify.train import train_classifier
from tasks.core.cache import Cache
images = build_labelled_images(Cache(Path(sys.argv[2])), Path(sys.argv[1]), ["color", "category"], 16, 0.25, 1)
encoding = LabelEncoding.fit(images.table(images.label_columns), images.label_columns, "multioutput")
options = ClassifierOptions(epochs=12, batch_size=8, image_size=16)
result = train_classifier(images, encoding, options, Path(sys.argv[3]))
print("RESUMED_FROM", result.resumed_from_epoch, "EPOCHS", result.epochs_run, "HISTORY", len(result.history["loss"]))
"""


@pytest.mark.slow
def test_a_killed_classifier_training_resumes_from_its_last_epoch(shapes, tmp_path):
    work = tmp_path / "work"
    command = [sys.executable, "-c", RESUMABLE, str(shapes), str(tmp_path / "cache"), str(work)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done_before = kill_after_epoch(command, work, 2, env)
    assert 2 <= done_before < 12
    finished = resumed_run(command, env)
    assert finished["RESUMED_FROM"] >= done_before
    assert finished["EPOCHS"] == 12 and finished["HISTORY"] == 12
