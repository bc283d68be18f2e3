"""Loading a saved `.keras` model: always in Keras safe mode (no code in the file is run), with this
project's layers registered, and any failure turned into one clear DataError naming the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

from tasks.core.errors import DataError


def load_keras_model(path: Path, what: str = "model", custom_objects: dict | None = None):
    """The model in `path`; a DataError saying what is wrong and what to do if it cannot be loaded safely."""
    import keras

    from tasks.training import layers  # noqa: F401  (registers the project's layers for loading)

    if not path.is_file():
        raise DataError(f"{what} file is missing; train one first, or give the right folder", path)
    if not zipfile.is_zipfile(path):
        raise DataError(f"not a Keras .keras file (truncated or another format); {what}s are saved as "
                        ".keras by this pipeline: train it again or restore the file", path)
    try:
        # For inference: compile=False also spares the optimizer state and Keras's warning about it.
        return keras.models.load_model(path, custom_objects=custom_objects, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises ValueError, TypeError, KeyError, OSError... for a bad file
        reason = " ".join(str(error).split())[:300]
        if "safe_mode" in reason or "Lambda" in reason:
            raise DataError(f"refused: the {what} contains code (a Lambda layer) that safe loading will not run; "
                            "use a model trained by this pipeline", path) from None
        raise DataError(f"cannot load this {what} ({type(error).__name__}: {reason}); it was saved by another "
                        "program or version, or is damaged: train it again", path) from None
