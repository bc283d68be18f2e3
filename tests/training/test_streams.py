"""The stream trainer's input (tasks.training.streams): images travel through the shuffle buffer as uint8 and
come out of each batch as float32 in [0, 1] with the same bits as the in-memory arrays (tasks.houses.arrays);
every row once per epoch, in another order each epoch."""

from __future__ import annotations

import numpy as np

from tasks.houses.arrays import montage_scale
from tasks.training.streams import chunk_stream


def _chunks(images: np.ndarray, values: np.ndarray, size: int):
    def chunks():
        for start in range(0, len(values), size):
            yield {"montage": images[start:start + size], "attributes": values[start:start + size, None]}, \
                values[start:start + size]
    return chunks


def test_uint8_images_come_out_of_the_stream_as_the_arrays_fit_uses():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 6, 6, 3), dtype=np.uint8)
    values = np.arange(50, dtype=np.float32)
    stream = chunk_stream(_chunks(images, values, 16), 50, 8, seed=1, buffer_rows=20)
    epochs = []
    for _ in range(2):
        rows = [(x["montage"].numpy(), x["attributes"].numpy()[:, 0], y.numpy()) for x, y in stream]
        montages, attributes, targets = (np.concatenate(part) for part in zip(*rows))
        assert montages.dtype == np.float32 and montages.min() >= 0 and montages.max() <= 1
        order = targets.astype(int)
        assert sorted(order) == list(range(50)) and np.array_equal(attributes, targets)
        assert np.array_equal(montages.view(np.uint32), montage_scale(images[order]).view(np.uint32))
        epochs.append(order)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[0], np.arange(50))
