"""Shared matplotlib set-up: a non-interactive backend and atomic PNG saving."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.colors import Colormap
from matplotlib.figure import Figure

from cnnlab.fileio import atomic_write_bytes


def save_figure(figure: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Render ``figure`` to PNG at ``path`` atomically and close it."""
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches."""
    return plt.figure(figsize=(width, height))


def colormap(name: str, bad: str = "white") -> Colormap:
    """A copy of the colour map ``name`` drawing NaN (grid gaps) in ``bad``."""
    return matplotlib.colormaps[name].with_extremes(bad=bad)
