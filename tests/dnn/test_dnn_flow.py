"""The stylize and colorize commands end to end through a real Prefect API: outputs with the
inputs' names, contact sheet, timing table, the cache skip on a re-run, and bad images."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.dnn.toy_networks import sepia_net
from tests.dnn.fixtures import tiny_colorization_model, write_corrupt, write_images, write_two_tone_photos
from tests.fixtures import read_artifact


@pytest.mark.slow
def test_stylize_writes_outputs_sheet_and_timing_and_reuses_them(run_cli, prefect_api, tmp_path: Path):
    photos = tmp_path / "photos"
    write_images(photos, 3)
    write_corrupt(photos / "z_broken.jpg")
    model = sepia_net(tmp_path / "sepia.onnx")
    out = tmp_path / "out"
    args = ["stylize", "--input", photos, "--model", model, "--out", out, "--cache", tmp_path / "cache",
            "--width", 20, "--workers", 2]
    first = run_cli(*args)
    assert "3 new, 0 reused, 1 skipped" in first.stdout
    for name in ("img0.png", "img1.jpg", "img2.png"):
        assert cv2.imread(str(out / name)).shape == (15, 20, 3)
    assert not (out / "z_broken.jpg").exists()
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape[0] == 3 * (22 + 160 + 6)  # one row per good image: name strip, images, gap
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_images"][0]["image"] == "z_broken.jpg"
    assert "cannot decode" in summary["skipped_images"][0]["reason"]
    assert "backend default, target cpu" in summary["engine"]
    assert (out / "timing.csv").read_text().splitlines()[0] == "image,status,width,height,ms,reason"
    assert "z_broken.jpg" in read_artifact(prefect_api, "stylize-summary").data

    again = run_cli(*args)
    assert "0 new, 3 reused, 1 skipped" in again.stdout

    one_worker = tmp_path / "one-worker"
    run_cli("stylize", "--input", photos, "--model", model, "--out", one_worker, "--cache", tmp_path / "cache1",
            "--width", 20, "--workers", 1)
    for name in ("img0.png", "img1.jpg", "img2.png"):  # two workers give the very same images as one
        np.testing.assert_array_equal(cv2.imread(str(one_worker / name)), cv2.imread(str(out / name)))

    failed = run_cli(*args, "--on-bad-image", "fail", check=False)
    assert failed.returncode == 2
    assert "error: " in failed.stderr and "z_broken.jpg: cannot decode this image" in failed.stderr
    assert "Traceback" not in failed.stderr


@pytest.mark.slow
def test_colorize_with_a_caffe_model_and_clear_errors(run_cli, tmp_path: Path):
    photos = tmp_path / "photos"
    write_images(photos, 2)
    model = tiny_colorization_model(tmp_path / "caffe")
    out = tmp_path / "out"
    result = run_cli("colorize", "--input", photos / "*.png", "--model", model["caffemodel"], "--prototxt",
                     model["prototxt"], "--points", model["points"], "--size", 16, "--out", out,
                     "--cache", tmp_path / "cache", "--workers", 1)
    assert "1 new, 0 reused, 0 skipped" in result.stdout
    assert cv2.imread(str(out / "img0.png")).shape == (24, 32, 3)

    # Bad parameters, in a subprocess too: in this process, after a test that imported TensorFlow, Prefect's
    # logging set-up would close absl's log handler and with it pytest's capture file.
    missing = run_cli("colorize", "--input", photos, "--out", out, check=False)
    assert missing.returncode == 2 and "pass --model PATH" in missing.stderr
    cuda = run_cli("colorize", "--input", photos, "--model", model["caffemodel"], "--prototxt", model["prototxt"],
                   "--points", model["points"], "--backend", "cuda", "--target", "cuda", "--out", out,
                   "--cache", tmp_path / "cache", check=False)
    assert cuda.returncode == 2 and "built without CUDA" in cuda.stderr


@pytest.mark.slow
def test_train_colorizer_reports_against_gray_and_colorize_accepts_its_export(run_cli, prefect_api, tmp_path: Path):
    photos = tmp_path / "photos"
    write_two_tone_photos(photos, 8, size=(32, 40))
    out, cache = tmp_path / "colorizer", tmp_path / "cache"
    args = ("--data", photos, "--out", out, "--cache", cache, "--size", 16, "--epochs", 10, "--batch-size", 4,
            "--test-fraction", 0.25)
    trained = run_cli("train-colorizer", *args)
    quality = json.loads((out / "quality.json").read_text())
    assert quality["photos"] == 2 and quality["lab_error"] < 0.5 * quality["lab_error_gray"]
    assert "gray (ab = 0)" in (out / "quality.md").read_text()
    assert cv2.imread(str(out / "contact_sheet.png")) is not None
    assert "our colorizer" in read_artifact(prefect_api, "colorizer-quality").data
    assert "Colorizer on 2 held-out photos" in trained.stdout + trained.stderr

    colorized = run_cli("colorize", "--input", photos, "--model", out / "colorizer.onnx", "--out", tmp_path / "c",
                        "--cache", cache)
    assert "8 new, 0 reused, 0 skipped" in colorized.stdout
    assert cv2.imread(str(tmp_path / "c" / "p0.png")).shape == (32, 40, 3)
    summary = read_artifact(prefect_api, "colorize-summary").data
    assert "# colorize: 8 images" in summary and "8 new, 0 reused, 0 skipped" in summary
    again = run_cli("train-colorizer", *args)
    assert re.search(r"Task run 'train-colorizer-\w+' - Finished in state Cached", again.stdout + again.stderr)
