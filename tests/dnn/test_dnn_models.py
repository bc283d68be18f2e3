"""Fetching published networks from a real local HTTP server, the sha256 lock file, and our own
colorizer: its ONNX export read by cv2.dnn agrees with Keras, and a short training runs end to end."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tasks.core.errors import DataError
from tasks.core.hashing import file_sha256
from tasks.dnn import colorizer as colorizer_training
from tasks.dnn.net import read_net
from tasks.dnn.onnx_export import keras_to_onnx
from tasks.dnn.registry import LOCK_NAME, PUBLISHED, fetch_model, read_lock, verify_against_lock
from tasks.dnn.toy_networks import sepia_net
from tests.dnn.fixtures import write_two_tone_photos


def test_fetch_records_hashes_verifies_them_and_refuses_changed_files(http_folder, tmp_path: Path, capfd):
    served, base_url = http_folder
    files = PUBLISHED["colorization"].files
    for i, name in enumerate(files):
        (served / name).write_bytes(f"published file {i}".encode() * 1000)
    models = tmp_path / "models"
    paths = fetch_model("colorization", models, base_url)
    assert [p.name for p in paths] == list(files)
    assert "Downloading colorization_release_v2.caffemodel [" in capfd.readouterr().err  # the progress bar
    lock = read_lock(models)
    assert lock[files[1]] == {"url": f"{base_url}/{files[1]}", "sha256": file_sha256(models / files[1])}

    assert fetch_model("colorization", models, base_url) == paths  # present and matching: nothing to do
    (models / files[1]).write_bytes(b"tampered")
    with pytest.raises(DataError, match="does not match the lock file"):
        verify_against_lock(models / files[1])
    with pytest.raises(DataError, match="colorization_release_v2.caffemodel: sha256 .* does not match"):
        fetch_model("colorization", models, base_url)

    (models / files[1]).unlink()  # fetched again, but the published file changed since the lock
    (served / files[1]).write_bytes(b"a different file")
    with pytest.raises(DataError, match="downloaded sha256 .* does not match the lock file"):
        fetch_model("colorization", models, base_url)
    assert not (models / files[1]).exists() and not list(models.glob(".*part"))
    assert read_lock(models) == lock


def test_fetch_of_an_unknown_name_or_a_missing_file_is_a_clear_error(http_folder, tmp_path: Path):
    _, base_url = http_folder
    with pytest.raises(DataError, match="unknown model 'nope'; known: "):
        fetch_model("nope", tmp_path / "models", base_url)
    with pytest.raises(DataError, match="cannot download: HTTP Error 404"):
        fetch_model("onnx-mosaic", tmp_path / "models", base_url)
    assert not (tmp_path / "models" / LOCK_NAME).exists()


def test_loading_a_model_checks_it_against_the_lock_beside_it(tmp_path: Path):
    model = sepia_net(tmp_path / "sepia.onnx")
    (tmp_path / LOCK_NAME).write_text(f'{{"sepia.onnx": {{"url": "x", "sha256": "{"0" * 64}"}}}}')
    with pytest.raises(DataError, match="sepia.onnx: sha256 .* does not match the lock file"):
        read_net(model)


def test_colorizer_export_read_by_cv2_dnn_matches_keras(tmp_path: Path):
    model = colorizer_training.build_colorizer(16)
    for layer in model.layers:  # random, not zero, biases so that every weight matters
        if layer.get_weights():
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, np.random.default_rng(0).normal(0, 0.1, bias.shape).astype(np.float32)])
    net = read_net(keras_to_onnx(model, tmp_path / "colorizer.onnx"))
    assert colorizer_training.export_check(model, net, 16, seed=0) < 1e-3
    net.setInput(np.zeros((1, 1, 16, 16), np.float32))
    assert net.forward().shape == (1, 2, 8, 8)  # ab at half the input size


def test_a_short_colorizer_training_beats_leaving_the_photos_gray(tmp_path: Path):
    write_two_tone_photos(tmp_path)
    loaded = colorizer_training.load_photos(tmp_path, None)
    train, test = colorizer_training.split_photos(loaded, 0.25, seed=1)
    assert (len(train), len(test)) == (6, 2)
    model, history = colorizer_training.train_colorizer([im for _, im in train], 16, 10, 4, 0, logging.getLogger())
    assert len(history["loss"]) == 10 and history["loss"][-1] < history["loss"][0]
    net = read_net(keras_to_onnx(model, tmp_path / "c.onnx"))
    result = colorizer_training.quality(net, test, 16)
    assert result["photos"] == 2 and len(result["per_photo"]) == 2
    assert 0 < result["psnr_gray"] < 40 and result["lab_error_gray"] > 10  # strongly coloured photos
    # measured: Lab error 13.5 against 54.1 for gray, PSNR 20.4 against 12.1 dB
    assert result["lab_error"] < 0.5 * result["lab_error_gray"] and result["psnr"] > result["psnr_gray"] + 3
    with pytest.raises(DataError, match="training needs at least 4 colour photos"):
        colorizer_training.load_photos(tmp_path, 2)
