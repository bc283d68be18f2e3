"""Image augmentation as Keras preprocessing layers (active in training only)."""

from __future__ import annotations

import keras

from tasks.training.layers import Augmentation


def image_augmenter(kinds: list[str], seed: int) -> Augmentation | None:
    """rotation (3 %), zoom (5 %), shift (5 %), flip (horizontal), in the order given; None for none."""
    steps = {
        "rotation": lambda: keras.layers.RandomRotation(0.03, seed=seed),
        "zoom": lambda: keras.layers.RandomZoom(0.05, seed=seed),
        "shift": lambda: keras.layers.RandomTranslation(0.05, 0.05, seed=seed),
        "flip": lambda: keras.layers.RandomFlip("horizontal", seed=seed),
    }
    return Augmentation([steps[k]() for k in kinds], name="augment") if kinds else None
