from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from tasks.price.models import ImageRecipe, build_cnn, build_mixed, build_mlp


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


def test_the_mixed_head_is_linear_by_default_and_relu_on_request():
    """A relu head let units die on the dearest houses and capped every prediction (issue 17)."""
    assert build_mixed(10, (32, 32, 3)).get_layer("head_dense").activation.__name__ == "linear"
    assert build_mixed(10, (32, 32, 3), head_activation="relu").get_layer("head_dense").activation.__name__ == "relu"


def test_a_residual_mixed_model_starts_as_its_attributes_price_and_saves_safely(tmp_path: Path):
    """residual fusion: the attributes' price plus a photo correction that starts at zero and is penalised."""
    model = build_mixed(10, (32, 32, 3), fusion="residual", photo_l2=0.01, output_bias=12.0)
    rng = np.random.default_rng(0)
    batch = {"attributes": rng.random((4, 10), "float32"), "montage": rng.random((4, 32, 32, 3), "float32")}
    other_photos = {**batch, "montage": rng.random((4, 32, 32, 3), "float32")}
    start = model.predict(batch, verbose=0)
    np.testing.assert_array_equal(model.predict(other_photos, verbose=0), start)  # photos do not count yet
    attributes_only = keras.Model(model.inputs, model.get_layer("attributes_price").output)
    np.testing.assert_allclose(attributes_only.predict(batch, verbose=0), start, rtol=1e-6)
    correction = model.get_layer("photo_correction")
    correction.kernel.assign(np.ones(correction.kernel.shape, "float32"))
    assert not np.allclose(model.predict(other_photos, verbose=0), model.predict(batch, verbose=0))
    model(batch)
    assert len(model.losses) == 1 and float(model.losses[0]) == pytest.approx(0.01 * 4)  # L2 of four weights of 1
    model.save(tmp_path / "residual.keras")
    loaded = keras.models.load_model(tmp_path / "residual.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), model.predict(batch, verbose=0), rtol=1e-6)


def test_an_ensemble_is_one_safe_model_averaging_its_members(tmp_path: Path):
    from tasks.price.models import build_ensemble

    members = [build_mixed(10, (32, 32, 3), output_bias=bias) for bias in (1.0, 2.0, 6.0)]
    batch = {"attributes": np.random.default_rng(0).random((3, 10), "float32"),
             "montage": np.random.default_rng(1).random((3, 32, 32, 3), "float32")}
    expected = np.mean([m.predict(batch, verbose=0) for m in members], axis=0)
    build_ensemble(members).save(tmp_path / "ensemble.keras")
    loaded = keras.models.load_model(tmp_path / "ensemble.keras", safe_mode=True)
    assert [t.name for t in loaded.inputs] == ["attributes", "montage"]
    np.testing.assert_allclose(loaded.predict(batch, verbose=0), expected, rtol=1e-5)


def test_the_stable_image_recipe_centres_normalises_before_relu_averages_and_flips_in_training():
    model = build_cnn((64, 64, 3), recipe=ImageRecipe(("flip",), "before-relu", "average", seed=1))
    assert model.get_layer("cnn_average").output.shape == (None, 64)
    assert model.get_layer("cnn_dense_0").count_params() == 64 * 16 + 16  # 4,096 x 16 + 16 when flattened
    names = [layer.name for layer in model.layers]
    assert names.index("cnn_centre") < names.index("cnn_conv_0") < names.index("cnn_bn_0") < names.index("cnn_relu_0")
    assert not model.get_layer("cnn_conv_0").use_bias  # the batch normalisation's shift takes its place
    images = np.random.default_rng(0).random((4, 64, 64, 3), "float32")
    flips = model.get_layer("augment")
    np.testing.assert_array_equal(flips(images, training=False), images)  # predictions never see a flip
    assert not np.array_equal(flips(images, training=True), images)
    # Nor a plain call of the model (Keras's random layers alone would flip there: their default is training).
    batch = {"montage": images}
    np.testing.assert_allclose(np.asarray(model(batch)), model.predict(batch, verbose=0), rtol=1e-5, atol=1e-6)


def test_price_mape_is_the_percentage_error_of_the_price_from_a_log_prediction(tmp_path: Path):
    from tasks.price.options import PriceOptions
    from tasks.price.train import PriceMAPE, compile_model
    from tasks.training.saved_models import load_keras_model

    prices, predicted = np.array([1e5, 4e5, 2e6]), np.array([5e4, 5e5, 2e6])
    # Keras passes the targets as (B,) and the predictions as (B, 1): each house against its own prediction.
    loss = PriceMAPE()(np.log(prices).astype("float32"), np.log(predicted)[:, None].astype("float32"))
    assert float(loss) == pytest.approx(np.mean(np.abs(predicted - prices) / prices), rel=1e-5)  # (0.5 + 0.25 + 0) / 3

    model = build_cnn((32, 32, 3), recipe=ImageRecipe(("flip",), "before-relu", "average"))  # saved, loaded safely
    compile_model(model, PriceOptions(strategy="cnn", loss="price-mape", target="log", schedule="cosine",
                                      warmup_epochs=2, clipnorm=1.0, weight_decay=1e-4), steps_per_epoch=3)
    assert isinstance(model.optimizer, keras.optimizers.AdamW) and model.optimizer.clipnorm == 1.0
    model.save(tmp_path / "m.keras")
    batch = {"montage": np.random.default_rng(0).random((2, 32, 32, 3), "float32")}
    np.testing.assert_allclose(load_keras_model(tmp_path / "m.keras").predict(batch, verbose=0),
                               model.predict(batch, verbose=0), rtol=1e-6)
