from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from tasks.price.models import build_cnn, build_mixed, build_mlp


def test_mlp_is_the_tutorials_8_4_1():
    model = build_mlp(10)
    assert model.output_shape == (None, 1)
    # (10*8 + 8) + (8*4 + 4) + (4*1 + 1)
    assert model.count_params() == 88 + 36 + 5


def test_cnn_shapes_and_parameter_count():
    model = build_cnn((64, 64, 3))
    assert model.output_shape == (None, 1)
    assert model.get_layer("cnn_flatten").output.shape == (None, 8 * 8 * 64)
    convs = (3 * 3 * 3 * 16 + 16) + (3 * 3 * 16 * 32 + 32) + (3 * 3 * 32 * 64 + 64)
    batch_norms = 4 * (16 + 32 + 64) + 4 * 16
    dense = (4096 * 16 + 16) + (16 * 4 + 4) + (4 + 1)
    assert model.count_params() == convs + batch_norms + dense


def test_mixed_concatenates_both_branches_and_takes_a_dict():
    model = build_mixed(10, (32, 32, 3))
    assert model.get_layer("concat").output.shape == (None, 8)
    batch = {"attributes": np.zeros((2, 10), "float32"), "montage": np.zeros((2, 32, 32, 3), "float32")}
    assert model.predict(batch, verbose=0).shape == (2, 1)


def test_saved_models_load_with_safe_mode(tmp_path: Path):
    model = build_mixed(10, (32, 32, 3))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    batch = {"attributes": np.ones((1, 10), "float32"), "montage": np.ones((1, 32, 32, 3), "float32")}
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-6)
