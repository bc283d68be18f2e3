"""The DNN image flows' parts through the real cv2.dnn: pre/post-processing arithmetic against
hand-computed pixels, small ONNX, Torch and Caffe networks we build, the per-image cache, chunks
and bad images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.core.errors import DataError
from tasks.core.images import IMAGENET_BGR_MEANS as IMAGENET_BGR_MEAN
from tasks.dnn.batch import DnnJob, chunked, load_net, model_sha256, process_image
from tasks.dnn.colorize import colorize, lightness_blob, merge_ab, to_lab
from tasks.dnn.images import resolve_inputs
from tasks.dnn.net import install_cluster_centres, read_net
from tasks.dnn.stylize import resize_to_width, style_blob, style_output, stylize
from tasks.dnn.toy_networks import SEPIA_BGR, sepia_net
from tests.dnn.fixtures import expected_ab, sepia_shift_t7, tiny_colorization_model, write_corrupt, write_images


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


def test_torch_t7_style_network_through_cv2_dnn_gives_the_hand_computed_pixels(tmp_path: Path):
    net = read_net(sepia_shift_t7(tmp_path / "sepia_shift.t7"))  # the Torch importer, as for Johnson et al.
    assert len(net.getLayerNames()) == 2  # two nn.SpatialConvolution modules in an nn.Sequential
    image = np.array([[[90, 90, 90], [10, 20, 30], [0, 0, 0]],
                      [[5, 5, 5], [255, 255, 255], [9, 9, 9]]], np.uint8)  # (2, 3, 3) BGR
    styled = stylize(net, image, width=3)
    assert styled.shape == (2, 3, 3)
    # out(y, x) = sepia(in(y, x + 1)): (10, 20, 30) -> B .131*10 + .534*20 + .272*30 = 20.15 -> 20,
    # G .168*10 + .686*20 + .349*30 = 25.87 -> 26, R .189*10 + .769*20 + .393*30 = 29.06 -> 29
    np.testing.assert_array_equal(styled[0, 0], [20, 26, 29])
    np.testing.assert_array_equal(styled[0, 1], [0, 0, 0])
    np.testing.assert_array_equal(styled[1, 0], [239, 255, 255])  # white: G and R saturate
    # last column: only the zero padding reaches it, so the output is the ImageNet means, rounded
    np.testing.assert_array_equal(styled[:, 2], [[104, 117, 124], [104, 117, 124]])


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


def test_caffe_colorization_net_with_installed_cluster_centres_matches_the_hand_computation(tmp_path: Path):
    model = tiny_colorization_model(tmp_path / "caffe")
    net = read_net(model["caffemodel"], config=model["prototxt"])  # the Caffe importer
    install_cluster_centres(net, model["points"], model["caffemodel"])
    assert net.getLayer(net.getLayerId("class8_ab")).blobs[0].shape == (2, 313, 1, 1)
    np.testing.assert_array_equal(net.getLayer(net.getLayerId("conv8_313_rh")).blobs[0], np.full((1, 313), 2.606,
                                                                                                  np.float32))
    lightness = np.random.default_rng(3).uniform(-50, 50, (1, 1, 16, 16)).astype(np.float32)
    net.setInput(lightness)
    ab = net.forward()
    assert ab.shape == (1, 2, 16, 16)
    np.testing.assert_allclose(ab, expected_ab(model, lightness), atol=1e-2)
    assert np.abs(ab).max() <= 90  # a weighted mean of cluster centres stays inside their range

    photo = np.random.default_rng(4).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    colorized = colorize(net, photo, size=16)
    assert colorized.shape == photo.shape and colorized.dtype == np.uint8
    lab = to_lab(photo)
    np.testing.assert_array_equal(colorized, merge_ab(lab, expected_ab(model, lightness_blob(lab, 16))))
    lightness_error = np.abs(to_lab(colorized)[:, :, 0] - lab[:, :, 0])
    assert np.median(lightness_error) < 3  # the photo's own L is kept (up to gamut clipping)


def test_cluster_centres_are_required_where_needed_and_refused_elsewhere(tmp_path: Path):
    model = tiny_colorization_model(tmp_path / "caffe")
    net = read_net(model["caffemodel"], config=model["prototxt"])
    with pytest.raises(DataError, match="class8_ab layer has no weights: pass its cluster centres with --points"):
        install_cluster_centres(net, None, model["caffemodel"])
    sepia = read_net(sepia_net(tmp_path / "sepia.onnx"))
    with pytest.raises(DataError, match="this model has no class8_ab, conv8_313_rh"):
        install_cluster_centres(sepia, model["points"], tmp_path / "sepia.onnx")
    np.save(tmp_path / "bad.npy", np.zeros((313, 3), np.float32))
    with pytest.raises(DataError, match=r"bad.npy: cluster centres must have shape \(Q, 2\), got \(313, 3\)"):
        install_cluster_centres(net, tmp_path / "bad.npy", model["caffemodel"])


def test_unreadable_missing_or_half_given_models_get_clear_errors(tmp_path: Path):
    (tmp_path / "candy.t7").write_bytes(b"not really torch")
    with pytest.raises(DataError, match="candy.t7: cv2.dnn cannot read this network"):
        read_net(tmp_path / "candy.t7")
    with pytest.raises(DataError, match="does not exist"):
        read_net(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(DataError, match="cannot read this network"):
        read_net(tmp_path / "junk.onnx")
    model = tiny_colorization_model(tmp_path / "caffe")
    with pytest.raises(DataError, match="pass the weights as --model WEIGHTS.caffemodel and the network definition"):
        read_net(model["caffemodel"])
    with pytest.raises(DataError, match="pass --prototxt DEPLOY.prototxt"):
        model_sha256(model["caffemodel"], None, model["points"])
    with pytest.raises(DataError, match="--points installs cluster centres .* this model is not Caffe"):
        model_sha256(sepia_net(tmp_path / "sepia.onnx"), None, model["points"])


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
    return DnnJob("stylize", model, model_sha256(model, None, None),
                  {"width": width, "mean": list(IMAGENET_BGR_MEAN), "swap_rb": False},
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


def test_a_caffe_colorize_job_loads_the_net_with_its_centres_and_keys_on_all_three_files(tmp_path: Path):
    model = tiny_colorization_model(tmp_path / "caffe")
    sha = model_sha256(model["caffemodel"], model["prototxt"], model["points"])
    job = DnnJob("colorize", model["caffemodel"], sha, {"size": 16}, model["prototxt"], model["points"],
                 cache_dir=tmp_path / "cache", out=tmp_path / "out")
    assert load_net(job).getLayer(load_net(job).getLayerId("class8_ab")).blobs[0].shape == (2, 313, 1, 1)
    image = write_images(tmp_path / "photos", 1)[0]
    row = process_image(job, image, image.name)
    assert row["status"] == "done" and (row["width"], row["height"]) == (32, 24)
    np.save(model["points"], np.load(model["points"]) + 1)  # other centres: another model, not a cache hit
    assert model_sha256(model["caffemodel"], model["prototxt"], model["points"]) != sha


def test_chunks_keep_the_order_two_per_worker_and_a_bounded_size():
    images = list(range(10))
    assert chunked(images, 1) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert chunked(images, 2) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert [len(c) for c in chunked(list(range(250)), 1, max_chunk=50)] == [50] * 5
    assert chunked([0], 4) == [[0]]
