"""The project's own Keras layers: named and registered for serialization (no Lambda), so a saved
`.keras` model carries them and loads in safe mode. Importing this module registers them."""

from __future__ import annotations

import keras
from keras import layers

from tasks.core.images import IMAGENET_BGR_MEANS

GRAY_WEIGHTS_BGR = (0.114, 0.587, 0.299)  # ITU-R BT.601 luma, as cv2.cvtColor(BGR2GRAY)


@keras.saving.register_keras_serializable(package="houses")
class ApplicationPreprocess(layers.Layer):
    """BGR [0, 1] -> the input an Applications network was trained on ("caffe" or "tf" mode)."""

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        self.mode = mode

    def call(self, images):
        if self.mode == "caffe":  # BGR, 0-255, ImageNet means subtracted
            return images * 255.0 - keras.ops.convert_to_tensor(IMAGENET_BGR_MEANS, dtype=images.dtype)
        return keras.ops.flip(images, axis=-1) * 2.0 - 1.0  # RGB in [-1, 1]

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="houses")
class Grayscale(layers.Layer):
    """(B, H, W, 3) BGR -> (B, H, W, channels) luma (repeated when channels is 3, for Applications networks)."""

    def __init__(self, channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, images):
        weights = keras.ops.convert_to_tensor(GRAY_WEIGHTS_BGR, dtype=images.dtype)
        gray = keras.ops.sum(images * weights, axis=-1, keepdims=True)  # (B, H, W, 1)
        return keras.ops.repeat(gray, self.channels, axis=-1) if self.channels > 1 else gray

    def get_config(self) -> dict:
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="houses")
class Augmentation(keras.Sequential):
    """Image augmentation layers that act only when training is asked for. Keras's random layers default to
    training=True, so inside a saved model a plain call, model(x), would flip or rotate the images it is asked
    to price; here a call that does not say "training" sees the images as given."""

    def call(self, inputs, training=False, mask=None):
        return super().call(inputs, training=bool(training), mask=mask)
