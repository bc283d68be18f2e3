"""Keras 3 functional builders for the house-price models. Each returns an uncompiled model.

Inputs are named so that data can be passed as a dict: "attributes" (B, n_features) and
"montage" (B, H, W, 3) with pixels scaled to [0, 1]. Every model ends in Dense(1, linear).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from tasks.training.augment import image_augmenter
from tasks.training.backbones import image_features, min_size


def mlp_branch(n_features: int, hidden: tuple[int, ...] = (8, 4)) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """(input, last hidden layer): the tutorials' Dense 8 -> Dense 4, relu."""
    inputs = keras.Input(shape=(n_features,), name="attributes")  # (B, F)
    x = inputs
    for i, units in enumerate(hidden):
        x = layers.Dense(units, activation="relu", name=f"mlp_dense_{i}")(x)
    return inputs, x


@dataclass(frozen=True)
class BackboneChoice:
    """A Keras Applications network in place of the tutorials' conv blocks (see tasks.backbones)."""

    name: str = "small"
    weights: str = "imagenet"
    fine_tune_layers: int = 0


@dataclass(frozen=True)
class ImageRecipe:
    """How the image branch treats its montage: augmentation (training only), where each conv block's batch
    normalisation sits, and how the last feature map becomes features."""

    augment: tuple[str, ...] = ()  # tasks.training.augment kinds, applied inside the model (any trainer)
    norm: str = "after-relu"  # the tutorials': conv -> relu -> BN; "before-relu": pixels centred, conv -> BN -> relu
    pooling: str = "flatten"  # or "average": global average pooling
    seed: int = 0


def cnn_branch(
    montage_shape: tuple[int, int, int] = (64, 64, 3),
    filters: tuple[int, ...] = (16, 32, 64),
    dense: tuple[int, ...] = (16, 4),
    dropout: float = 0.5,
    backbone: BackboneChoice = BackboneChoice(),
    recipe: ImageRecipe = ImageRecipe(),
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """(input, last hidden layer): conv 3x3 -> relu -> batch norm -> max pool per filter size, the last feature
    map flattened, then dense 16 -> relu -> batch norm -> dropout -> dense 4 -> relu (the tutorials' CNN).
    `recipe` can centre the pixels and normalise each convolution before its relu (a well-conditioned start
    whatever the photos' brightness), and average the last feature map over the image (64 features instead of
    4,096: the dense layer after it has 64x fewer weights to fit on a few hundred houses).
    With an Applications backbone, its pooled features replace the conv blocks (the montage is
    resized up to the network's minimum input size when smaller)."""
    inputs = keras.Input(shape=montage_shape, name="montage")  # (B, 64, 64, 3)
    x = inputs
    augmenter = image_augmenter(list(recipe.augment), recipe.seed)
    if augmenter is not None:
        x = augmenter(x)  # active in training only
    if backbone.name != "small":
        return inputs, _backbone_head(x, backbone, dense, dropout)
    before = recipe.norm == "before-relu"
    if before:
        x = layers.Rescaling(2.0, offset=-1.0, name="cnn_centre")(x)  # [0, 1] -> [-1, 1]
    for i, count in enumerate(filters):
        x = layers.Conv2D(count, 3, padding="same", use_bias=not before, name=f"cnn_conv_{i}")(x)
        if before:
            x = layers.BatchNormalization(name=f"cnn_bn_{i}")(x)
            x = layers.Activation("relu", name=f"cnn_relu_{i}")(x)
        else:
            x = layers.Activation("relu", name=f"cnn_relu_{i}")(x)
            x = layers.BatchNormalization(name=f"cnn_bn_{i}")(x)
        x = layers.MaxPooling2D(2, name=f"cnn_pool_{i}")(x)  # halves H and W
    if recipe.pooling == "average":
        x = layers.GlobalAveragePooling2D(name="cnn_average")(x)  # (B, filters[-1])
    else:
        x = layers.Flatten(name="cnn_flatten")(x)  # (B, H/2^k * W/2^k * filters[-1])
    x = layers.Dense(dense[0], activation="relu", name="cnn_dense_0")(x)
    x = layers.BatchNormalization(name="cnn_dense_bn")(x)
    x = layers.Dropout(dropout, name="cnn_dropout")(x)
    for i, units in enumerate(dense[1:], start=1):
        x = layers.Dense(units, activation="relu", name=f"cnn_dense_{i}")(x)
    return inputs, x


def _backbone_head(images, backbone: BackboneChoice, dense: tuple[int, ...], dropout: float) -> keras.KerasTensor:
    side = max(images.shape[1], min_size(backbone.name))
    x = images if side == images.shape[1] else layers.Resizing(side, side, name="cnn_resize")(images)
    x = image_features(x, backbone.name, backbone.weights, backbone.fine_tune_layers, name="cnn")  # (B, F)
    x = layers.Dropout(dropout, name="cnn_dropout")(x)
    for i, units in enumerate(dense):
        x = layers.Dense(units, activation="relu", name=f"cnn_dense_{i}")(x)
    return x


def price_head(x: keras.KerasTensor, output_bias: float = 0.0, name: str = "price") -> keras.KerasTensor:
    """Dense(1, linear); starting the bias at the mean target saves the first epochs' climb."""
    return layers.Dense(1, name=name, bias_initializer=keras.initializers.Constant(output_bias))(x)


def build_mlp(n_features: int, hidden: tuple[int, ...] = (8, 4), output_bias: float = 0.0) -> keras.Model:
    inputs, x = mlp_branch(n_features, hidden)
    return keras.Model({"attributes": inputs}, price_head(x, output_bias), name="mlp")


def build_cnn(montage_shape: tuple[int, int, int] = (64, 64, 3), filters: tuple[int, ...] = (16, 32, 64),
              dense: tuple[int, ...] = (16, 4), dropout: float = 0.5, output_bias: float = 0.0,
              backbone: BackboneChoice = BackboneChoice(), recipe: ImageRecipe = ImageRecipe()) -> keras.Model:
    inputs, x = cnn_branch(montage_shape, filters, dense, dropout, backbone, recipe)
    return keras.Model({"montage": inputs}, price_head(x, output_bias), name="cnn")


def build_mixed(n_features: int, montage_shape: tuple[int, int, int] = (64, 64, 3),
                hidden: tuple[int, ...] = (8, 4), filters: tuple[int, ...] = (16, 32, 64),
                dense: tuple[int, ...] = (16, 4), dropout: float = 0.5, head: int = 4,
                output_bias: float = 0.0, backbone: BackboneChoice = BackboneChoice(),
                head_activation: str = "linear", recipe: ImageRecipe = ImageRecipe(),
                fusion: str = "concat", photo_l2: float = 0.0) -> keras.Model:
    """MLP and CNN branches without their heads, joined one of two ways.
    concat (the tutorials'): concatenated -> Dense(head) -> Dense(1). A relu head lets units die on the priciest
    houses and caps the predictions; linear does not.
    residual: the MLP's own price head plus a photo correction, a Dense(1) of the CNN's features that starts at
    zero (the model starts as the MLP) and is held small by an L2 penalty `photo_l2` on its weights, so the
    photos' noisy features move the price only as far as they earn it. The features are standardised first
    (batch norm without scale or offset): else they could grow and the weights shrink, escaping the penalty."""
    mlp_in, mlp_out = mlp_branch(n_features, hidden)
    cnn_in, cnn_out = cnn_branch(montage_shape, filters, dense, dropout, backbone, recipe)
    inputs = {"attributes": mlp_in, "montage": cnn_in}
    if fusion == "residual":
        features = layers.BatchNormalization(center=False, scale=False, name="photo_standardise")(cnn_out)
        correction = layers.Dense(1, use_bias=False, kernel_initializer="zeros", name="photo_correction",
                                  kernel_regularizer=keras.regularizers.L2(photo_l2) if photo_l2 else None)(features)
        base = price_head(mlp_out, output_bias, name="attributes_price")
        return keras.Model(inputs, layers.Add(name="price")([base, correction]), name="mixed")
    x = layers.Concatenate(name="concat")([mlp_out, cnn_out])  # (B, hidden[-1] + dense[-1])
    x = layers.Dense(head, activation=head_activation, name="head_dense")(x)
    return keras.Model(inputs, price_head(x, output_bias), name="mixed")


def build_ensemble(members: list[keras.Model]) -> keras.Model:
    """One model whose output is the mean of the members' outputs on the same inputs (for a log target, the
    geometric mean of their prices). Standard layers only, so it saves and loads safely as one .keras file."""
    inputs = {name: keras.Input(shape=tensor.shape[1:], name=name) for name, tensor in _named_inputs(members[0])}
    outputs = []
    for i, member in enumerate(members):
        member.name = f"member_{i}"
        outputs.append(member({name: inputs[name] for name, _ in _named_inputs(member)}))
    return keras.Model(inputs, layers.Average(name="price")(outputs), name=f"ensemble_of_{len(members)}")


def _named_inputs(model: keras.Model) -> list[tuple[str, keras.KerasTensor]]:
    return [(tensor.name, tensor) for tensor in model.inputs]
