"""Matplotlib without a screen, and a figure saver whose files are complete or absent."""

from __future__ import annotations

from pathlib import Path

from tasks.core.files import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); chosen here, not at import time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 100) -> Path:
    """Lay out, write beside and rename, close."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    pyplot().close(fig)
    return path
