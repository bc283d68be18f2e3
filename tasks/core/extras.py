"""Optional parts of the package (`pip install "house-pipeline[EXTRA]"`): one check, one message.

The modules of an extra are imported only where they are used; before that work starts, the command
calls `require_extra`, so a missing extra is one line naming what to install, not an ImportError."""

from __future__ import annotations

import importlib.util

from tasks.core.errors import DataError

EXTRAS = {  # what needs each extra, as the subject of "... needs"
    "automl": "an AutoKeras sweep (sweep)",
    "dask": "a Dask cluster (sweep --workers / --dask-address)",
    "dnn": "the ONNX export (train-colorizer, models toy)",
}


def require_extra(extra: str, *modules: str) -> None:
    """Raise a DataError naming `pip install "house-pipeline[EXTRA]"` unless every module can be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise DataError(f"{EXTRAS[extra]} needs the optional [{extra}] dependencies (not installed: "
                        f"{', '.join(missing)}): pip install \"house-pipeline[{extra}]\"")
