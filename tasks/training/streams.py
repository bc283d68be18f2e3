"""The stream trainer's input: tf.data over chunks read from disk one at a time, so memory does not
grow with the data; a shuffle buffer of rows, batches, augmentation of one image input, prefetch.

uint8 inputs (images as their bytes) travel through the shuffle buffer and the batching as bytes, a quarter of
float32's size, and are scaled to float32 in [0, 1] once a batch is formed, by tf.data's own threads rather than
numpy in the generator's thread (x / 255 in float32 either way: the same bits as tasks.houses.arrays)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

from tasks.training.augment import image_augmenter

Chunk = tuple[dict[str, np.ndarray], np.ndarray | dict[str, np.ndarray]]


def _spec(value: np.ndarray) -> tf.TensorSpec:
    return tf.TensorSpec((None, *value.shape[1:]), tf.uint8 if value.dtype == np.uint8 else tf.float32)


def _scaled(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    return {name: tf.cast(value, tf.float32) / 255.0 if value.dtype == tf.uint8 else value
            for name, value in batch.items()}


def chunk_stream(chunks: Callable[[], Iterator[Chunk]], n_rows: int, batch_size: int, seed: int,
                 shuffle: bool = True, augment: list[str] | None = None, image_input: str | None = None,
                 buffer_rows: int = 1024) -> tf.data.Dataset:
    """Batches of (inputs by name, targets) from `chunks()`, a generator of chunks of rows (called once
    per epoch). `augment` applies to the input named `image_input`."""
    first_x, first_y = next(chunks())
    signature = ({name: _spec(value) for name, value in first_x.items()},
                 {name: _spec(value) for name, value in first_y.items()} if isinstance(first_y, dict)
                 else _spec(first_y))
    data = tf.data.Dataset.from_generator(chunks, output_signature=signature).unbatch()
    if shuffle:
        data = data.shuffle(min(n_rows, buffer_rows), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).apply(tf.data.experimental.assert_cardinality(math.ceil(n_rows / batch_size)))
    if any(spec.dtype == tf.uint8 for spec in signature[0].values()):
        data = data.map(lambda x, y: (_scaled(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    augmenter = image_augmenter(augment or [], seed) if image_input else None
    if augmenter is not None:
        data = data.map(lambda x, y: ({**x, image_input: augmenter(x[image_input], training=True)}, y),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)
