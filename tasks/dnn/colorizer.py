"""Our own colorizer: a small Keras network from lightness to colour (L - 50 in, ab out, the
published model's contract), trained on a folder of colour photos, exported to ONNX for cv2.dnn,
and judged on held-out photos against leaving them gray.

Network (NHWC, S = input size):
    (S, S, 1) -> pad+conv 3x3/2 16 -> pad+conv 3x3/2 32 -> pad+conv 3x3/2 64    # (S/8, S/8, 64)
    -> conv 3x3 dil 2 64 -> up x2 -> conv 3x3 32 -> up x2 -> conv 3x3 16        # (S/2, S/2, 16)
    -> conv 3x3 2 -> x 100                                                      # (S/2, S/2, 2) ab
The colorize flow resizes ab to the photo and keeps the photo's own L, as for the published one.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from tasks.core import interrupt
from tasks.core.cache import Cache
from tasks.core.errors import DataError
from tasks.core.files import atomic_write_json
from tasks.core.hashing import bytes_sha256, code_version, digest
from tasks.core.images import read_image
from tasks.core.locks import exclusive
from tasks.dnn import colorize as colorize_module
from tasks.dnn.colorize import L_OFFSET, colorize, merge_ab, to_lab
from tasks.dnn.images import resolve_inputs
from tasks.dnn.net import read_net

STAGE = "colorizer"


def build_colorizer(size: int) -> keras.Model:  # noqa: F821
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 1), name="L")
    x = inputs
    for filters in (16, 32, 64):
        x = layers.ZeroPadding2D(1)(x)
        x = layers.Conv2D(filters, 3, strides=2, activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", dilation_rate=2, activation="relu")(x)
    for filters in (32, 16):
        x = layers.UpSampling2D(2)(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(2, 3, padding="same")(x)
    outputs = layers.Rescaling(100.0, name="ab")(x)
    return keras.Model(inputs, outputs, name="colorizer")


def load_photos(folder: Path, max_images: int | None) -> list[tuple[Path, np.ndarray]]:
    """Every decodable colour photo of the folder (sorted; the first `max_images`)."""
    photos = [(path, read_image(path)) for path, _ in resolve_inputs(str(folder), max_images)]
    if len(photos) < 4:
        raise DataError(f"found {len(photos)} photos; training needs at least 4 colour photos", folder)
    return photos


def split_photos(photos: list, test_fraction: float, seed: int) -> tuple[list, list]:
    order = np.random.default_rng(seed).permutation(len(photos))
    n_test = max(1, round(len(photos) * test_fraction))
    return [photos[i] for i in order[n_test:]], [photos[i] for i in order[:n_test]]


def training_arrays(images: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, S, S, 1) L - 50 and targets (N, S/2, S/2, 2) ab, as the colorize flow computes them."""
    inputs, targets = [], []
    for image in images:
        lab = cv2.resize(to_lab(image), (size, size))  # (S, S, 3)
        inputs.append(lab[:, :, :1] - L_OFFSET)
        targets.append(cv2.resize(lab[:, :, 1:], (size // 2, size // 2), interpolation=cv2.INTER_AREA))
    return np.stack(inputs).astype(np.float32), np.stack(targets).astype(np.float32)


def train_colorizer(photos: list[np.ndarray], size: int, epochs: int, batch_size: int, seed: int, log) -> tuple:
    """(model, history): Adam on the mean squared ab error, one log line per epoch."""
    import keras

    keras.utils.set_random_seed(seed)
    x, y = training_arrays(photos, size)
    model = build_colorizer(size)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
    history = {"loss": []}
    stop = keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: interrupt.check())  # Ctrl-C, SIGTERM
    for epoch in range(epochs):
        start = time.perf_counter()
        loss = model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=True, verbose=0,
                         callbacks=[stop]).history["loss"][0]
        history["loss"].append(float(loss))
        log.info("Colorizer epoch %d/%d: ab MSE %.2f (%.1f s)", epoch + 1, epochs, loss, time.perf_counter() - start)
    return model, history


def export_check(model, net: cv2.dnn.Net, size: int, seed: int) -> float:
    """Largest |Keras - cv2.dnn| on random lightness inputs: the export's fidelity."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-50, 50, (2, size, size, 1)).astype(np.float32)
    expected = model.predict(x, verbose=0)  # (2, S/2, S/2, 2)
    worst = 0.0
    for sample, reference in zip(x, expected):
        net.setInput(sample.transpose(2, 0, 1)[None])  # (1, 1, S, S)
        got = net.forward()[0].transpose(1, 2, 0)
        worst = max(worst, float(np.abs(got - reference).max()))
    return worst


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    mse = float(np.mean((reference.astype(np.float64) - image.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def lab_error(reference: np.ndarray, image: np.ndarray) -> float:
    """Mean CIE76 colour difference (Euclidean distance in Lab, L 0..100) over the pixels."""
    return float(np.linalg.norm(to_lab(reference) - to_lab(image), axis=2).mean())


def gray_baseline(image: np.ndarray) -> np.ndarray:
    """The photo with its own L and no colour (ab = 0), through the same merge as the network."""
    lab = to_lab(image)
    return merge_ab(lab, np.zeros((1, 2, 8, 8), np.float32))


def quality(net: cv2.dnn.Net, photos: list[tuple[Path, np.ndarray]], size: int) -> dict:
    """PSNR and Lab colour error of the colorized held-out photos (full colorize pipeline, cv2.dnn) vs gray."""
    rows = []
    for path, image in photos:
        colorized, gray = colorize(net, image, size), gray_baseline(image)
        rows.append({"photo": path.name, "psnr": psnr(image, colorized), "psnr_gray": psnr(image, gray),
                     "lab_error": lab_error(image, colorized), "lab_error_gray": lab_error(image, gray)})
    means = {name: round(float(np.mean([r[name] for r in rows])), 3)
             for name in ("psnr", "psnr_gray", "lab_error", "lab_error_gray")}
    return {"photos": len(rows), **means, "per_photo": rows}


def write_sidecar(path: Path, size: int, extra: dict) -> None:
    """MODEL.json beside MODEL.onnx: what the colorize flow needs to feed the network."""
    atomic_write_json(path.with_suffix(".json"), {"kind": "colorizer", "input": "L - 50, (1, 1, S, S)",
                                                  "output": "ab, (1, 2, S/2, S/2)", "input_size": size, **extra})


def sidecar_size(model: Path) -> int | None:
    """The input size recorded beside an exported colorizer, if any."""
    sidecar = model.with_suffix(".json")
    if not sidecar.is_file():
        return None
    try:
        return int(json.loads(sidecar.read_text())["input_size"])
    except (ValueError, KeyError, TypeError):
        raise DataError("unreadable sidecar: expected JSON with input_size; delete it or pass --size", sidecar) \
            from None


def colorizer_key(photos: list[Path], size: int, epochs: int, batch_size: int, test_fraction: float,
                  seed: int) -> str:
    """The content key of a colorizer: its photos' bytes, the settings and this code's version."""
    from tasks.dnn import onnx_export

    return digest(STAGE, [bytes_sha256(p.read_bytes()) for p in photos], size, epochs, batch_size, test_fraction,
                  seed, code_version(sys.modules[__name__], onnx_export, colorize_module))


def colorizer_entry(data: Path, cache: Cache, size: int, epochs: int, batch_size: int, test_fraction: float,
                    seed: int, max_images: int | None) -> tuple[str, bool]:
    """(the colorizer's content key, whether its entry is complete and verified), without decoding photos."""
    key = colorizer_key([p for p, _ in resolve_inputs(str(data), max_images)], size, epochs, batch_size,
                        test_fraction, seed)
    return key, cache.lookup(STAGE, key) is not None


def train_or_reuse_colorizer(data: Path, cache: Cache, size: int, epochs: int, batch_size: int, test_fraction: float,
                             seed: int, max_images: int | None,
                             log: logging.Logger | logging.LoggerAdapter) -> tuple[Path, list[Path]]:
    """(cache entry with colorizer.keras/.onnx/.json, held-out photo paths): trained, exported to ONNX and
    checked against Keras through cv2.dnn, unless the same photos and settings were trained before."""
    photos = load_photos(data, max_images)
    train, test = split_photos(photos, test_fraction, seed)
    key = colorizer_key([p for p, _ in photos], size, epochs, batch_size, test_fraction, seed)
    with exclusive(cache.root / "locks" / f"{STAGE}-{key}.lock", "this colorizer", log):
        entry = cache.lookup(STAGE, key)
        if entry is not None:
            log.info("Colorizer reused from the cache (%s)", entry)
        else:
            entry = _train_and_store(cache, key, [image for _, image in train], size, epochs, batch_size, seed,
                                     len(test), log)
    return entry, [p for p, _ in test]


def _train_and_store(cache: Cache, key: str, train: list[np.ndarray], size: int, epochs: int, batch_size: int,
                     seed: int, n_test: int, log: logging.Logger | logging.LoggerAdapter) -> Path:
    """Train, export to ONNX, check the export against Keras through cv2.dnn, store the entry; its folder."""
    from tasks.dnn import onnx_export

    log.info("Training the colorizer on %d photos (%d held out) at %d px, %d epochs", len(train), n_test,
             size, epochs)
    start = time.perf_counter()
    model, history = train_colorizer(train, size, epochs, batch_size, seed, log)
    with cache.write(STAGE, key) as tmp:
        model.save(tmp / "colorizer.keras")
        onnx_path = onnx_export.keras_to_onnx(model, tmp / "colorizer.onnx")
        worst = export_check(model, read_net(onnx_path), size, seed)
        if worst > 1e-2:
            raise RuntimeError(f"the ONNX export differs from Keras by up to {worst:.3g} ab units")
        write_sidecar(onnx_path, size, {
            "epochs": epochs, "batch_size": batch_size, "train_photos": len(train), "test_photos": n_test,
            "seed": seed, "export_max_abs_diff": worst, "train_seconds": round(time.perf_counter() - start, 1),
            "loss": history["loss"]})
    return cache.entry_path(STAGE, key)
