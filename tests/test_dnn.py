"""The DNN image flows' parts through the real cv2.dnn: pre/post-processing arithmetic against
hand-computed pixels, small ONNX and Caffe networks we build, the per-image cache and bad images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.caffe_onnx import caffe_to_onnx, parse_prototxt
from tasks.colorize import colorize, lightness_blob, merge_ab, to_lab
from tasks.dnn_images import resolve_inputs
from tasks.dnn_models import IMAGENET_BGR_MEAN, read_net
from tasks.dnn_tasks import DnnJob, prepare_model, process_image
from tasks.errors import DataError
from tasks.stylize import resize_to_width, style_blob, style_output, stylize
from tasks.toy_networks import SEPIA_BGR, sepia_net
from tests.dnn_fixtures import expected_ab, tiny_colorization_model, write_corrupt, write_images


def test_style_blob_subtracts_and_output_adds_the_imagenet_means():
    image = np.array([[[10, 20, 30], [200, 150, 100]]], np.uint8)  # (1, 2, 3) BGR
    blob = style_blob(image)  # (1, 3, 1, 2)
    assert blob.shape == (1, 3, 1, 2)
    np.testing.assert_allclose(blob[0, :, 0, 0], [10 - 103.939, 20 - 116.779, 30 - 123.680], atol=1e-4)
    back = style_output(blob + np.float32(0.4))  # means added back, rounded, clipped
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back[0, 1], [200, 150, 100])
    np.testing.assert_array_equal(style_output(np.full((1, 3, 1, 1), 500, np.float32))[0, 0], [255, 255, 255])
    swapped = style_blob(image, (0, 0, 0), swap_rb=True)
    np.testing.assert_allclose(swapped[0, :, 0, 0], [30, 20, 10])
    np.testing.assert_array_equal(style_output(swapped, (0, 0, 0), swap_rb=True)[0, 0], [10, 20, 30])


def test_sepia_network_through_cv2_dnn_gives_the_hand_computed_pixels(tmp_path: Path):
    net = read_net(sepia_net(tmp_path / "sepia.onnx"))
    image = np.array([[[10, 20, 30], [200, 150, 100]], [[0, 0, 0], [255, 255, 255]]], np.uint8)  # (2, 2, 3)
    styled = stylize(net, image, width=2)
    expected = np.clip(np.rint(image.reshape(-1, 3).astype(np.float64) @ SEPIA_BGR.T.astype(np.float64)), 0, 255)
    # pixel (0, 0): B = .131*10 + .534*20 + .272*30 = 20.15 -> 20; G = 25.87 -> 26; R = 29.06 -> 29
    np.testing.assert_array_equal(styled[0, 0], [20, 26, 29])
    np.testing.assert_allclose(styled.reshape(-1, 3), expected, atol=1)  # float32 in the net: off by one at most
    assert styled[1, 1].tolist() == [239, 255, 255]  # white saturates in G and R


def test_stylize_keeps_the_aspect_ratio_at_the_chosen_width(tmp_path: Path):
    net = read_net(sepia_net(tmp_path / "sepia.onnx"))
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    assert resize_to_width(image, 20).shape == (15, 20, 3)
    styled = stylize(net, image, width=20)
    assert styled.shape == (15, 20, 3) and styled.dtype == np.uint8


def test_lightness_blob_is_l_minus_50_at_the_network_size():
    white, black = np.full((5, 7, 3), 255, np.uint8), np.zeros((5, 7, 3), np.uint8)
    assert lightness_blob(to_lab(white), 8).shape == (1, 1, 8, 8)
    np.testing.assert_allclose(lightness_blob(to_lab(white), 8), 50.0, atol=1e-3)  # L = 100
    np.testing.assert_allclose(lightness_blob(to_lab(black), 8), -50.0, atol=1e-3)  # L = 0


def test_merge_keeps_the_photo_lightness_and_applies_ab():
    gray = np.full((6, 4, 3), 128, np.uint8)
    lab = to_lab(gray)
    ab = np.zeros((1, 2, 3, 3), np.float32)
    ab[0, 0], ab[0, 1] = 40.0, 20.0  # reddish: a = 40, b = 20 everywhere
    out = merge_ab(lab, ab)
    assert out.shape == (6, 4, 3) and out.dtype == np.uint8
    pixel = np.array([[[lab[0, 0, 0], 40.0, 20.0]]], np.float32)
    expected = (255 * np.clip(cv2.cvtColor(pixel, cv2.COLOR_LAB2BGR), 0, 1)).astype(np.uint8)[0, 0]
    np.testing.assert_array_equal(out[2, 1], expected)
    assert out[2, 1, 2] > out[2, 1, 0]  # red above blue
    np.testing.assert_array_equal(merge_ab(lab, np.zeros((1, 2, 2, 2), np.float32))[0, 0], [127, 127, 127])


def test_prototxt_parser_reads_nested_messages_and_python_booleans():
    net = parse_prototxt('name: "x"\nlayer { name: "a" type: "Scale" # note\n scale_param { bias_term: False '
                         "filler { type: 'constant' value: 2.606 } } }")
    layer = net["layer"][0]
    assert layer["scale_param"][0]["bias_term"] == [False]
    assert layer["scale_param"][0]["filler"][0] == {"type": ["constant"], "value": [2.606]}


def test_caffe_colorization_net_with_cluster_centres_matches_the_hand_computation(tmp_path: Path):
    model = tiny_colorization_model(tmp_path / "caffe")
    onnx_path = caffe_to_onnx(model["prototxt"], model["caffemodel"], model["points"], tmp_path / "tiny.onnx")
    net = read_net(onnx_path)
    lightness = np.random.default_rng(3).uniform(-50, 50, (1, 1, 16, 16)).astype(np.float32)
    net.setInput(lightness)
    ab = net.forward()
    assert ab.shape == (1, 2, 16, 16)
    np.testing.assert_allclose(ab, expected_ab(model, lightness), atol=1e-2)
    assert np.abs(ab).max() <= 90  # a weighted mean of cluster centres stays inside their range

    photo = np.random.default_rng(4).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    colorized = colorize(net, photo, size=16)
    assert colorized.shape == photo.shape and colorized.dtype == np.uint8
    lightness_error = np.abs(to_lab(colorized)[:, :, 0] - to_lab(photo)[:, :, 0])
    assert np.median(lightness_error) < 3  # the photo's own L is kept (up to gamut clipping)


def test_caffe_model_without_weights_for_a_layer_is_refused(tmp_path: Path):
    model = tiny_colorization_model(tmp_path / "caffe")
    with pytest.raises(DataError, match="'class8_ab' .* has no weights"):
        caffe_to_onnx(model["prototxt"], model["caffemodel"], None, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_a_torch_model_on_opencv_5_and_a_missing_model_get_clear_errors(tmp_path: Path):
    (tmp_path / "candy.t7").write_bytes(b"not really torch")
    if cv2.__version__.startswith("5"):
        with pytest.raises(DataError, match="no Torch importer"):
            read_net(tmp_path / "candy.t7")
    with pytest.raises(DataError, match="does not exist"):
        read_net(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read this network"):
        read_net(tmp_path / "junk.onnx")


def test_inputs_from_a_file_a_folder_or_a_glob(tmp_path: Path):
    paths = write_images(tmp_path / "photos", 3)
    (tmp_path / "photos" / "notes.txt").write_text("x")
    assert [name for _, name in resolve_inputs(str(tmp_path / "photos"))] == ["img0.png", "img1.jpg", "img2.png"]
    assert resolve_inputs(str(paths[1])) == [(paths[1], "img1.jpg")]
    assert [name for _, name in resolve_inputs(str(tmp_path / "photos" / "*.png"))] == ["img0.png", "img2.png"]
    assert len(resolve_inputs(str(tmp_path / "photos"), limit=2)) == 2
    with pytest.raises(DataError, match="no such file or folder"):
        resolve_inputs(str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="no images"):
        resolve_inputs(str(tmp_path / "photos" / "*.gif"))


def _job(tmp_path: Path, model: Path, on_bad_image: str = "skip", width: int = 16) -> DnnJob:
    path, sha = prepare_model(model, None, None, tmp_path / "cache")
    return DnnJob("stylize", path, sha, {"width": width, "mean": list(IMAGENET_BGR_MEAN), "swap_rb": False},
                  cache_dir=tmp_path / "cache", out=tmp_path / "out", on_bad_image=on_bad_image)


def test_an_image_done_with_the_same_model_and_settings_is_reused(tmp_path: Path):
    model = sepia_net(tmp_path / "sepia.onnx")
    image = write_images(tmp_path / "photos", 1)[0]
    first = process_image(_job(tmp_path, model), image, image.name)
    written = (tmp_path / "out" / image.name).read_bytes()
    assert first["status"] == "done" and (first["width"], first["height"]) == (16, 12)
    (tmp_path / "out" / image.name).unlink()
    again = process_image(_job(tmp_path, model), image, image.name)
    assert again["status"] == "reused" and again["ms"] == first["ms"]
    assert (tmp_path / "out" / image.name).read_bytes() == written
    assert process_image(_job(tmp_path, model, width=8), image, image.name)["status"] == "done"  # new settings


def test_a_corrupt_image_is_skipped_or_stops_the_run(tmp_path: Path):
    model = sepia_net(tmp_path / "sepia.onnx")
    bad = write_corrupt(tmp_path / "photos" / "broken.jpg")
    row = process_image(_job(tmp_path, model), bad, bad.name)
    assert row["status"] == "skipped" and "broken.jpg: cannot decode this image" in row["reason"]
    assert not (tmp_path / "out" / "broken.jpg").exists()
    with pytest.raises(DataError, match="broken.jpg: cannot decode"):
        process_image(_job(tmp_path, model, on_bad_image="fail"), bad, bad.name)


def test_a_caffe_model_is_converted_once_and_needs_its_prototxt(tmp_path: Path):
    model = tiny_colorization_model(tmp_path / "caffe")
    first, sha = prepare_model(model["caffemodel"], model["prototxt"], model["points"], tmp_path / "cache")
    again, sha_again = prepare_model(model["caffemodel"], model["prototxt"], model["points"], tmp_path / "cache")
    assert first == again and sha == sha_again and first.suffix == ".onnx"
    with pytest.raises(DataError, match="pass --prototxt"):
        prepare_model(model["caffemodel"], None, model["points"], tmp_path / "cache")
