"""Checks of what a picture shows, not of how many bytes its PNG takes (which depends on the
matplotlib and freetype build): the colours of the colour map a panel was drawn with, the two
series of a curve plot, the grey levels of image tiles."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

#: matplotlib's first two cycle colours: the training and the validation series.
SERIES = ((31, 119, 180), (255, 127, 14))


def read_png(path: Path | bytes) -> np.ndarray:
    """The pixels of a PNG file (or its bytes) as ``H x W x 3`` uint8; fails unless PNG."""
    if isinstance(path, bytes):
        import io

        image = Image.open(io.BytesIO(path))
    else:
        image = Image.open(path)
    with image:
        assert image.format == "PNG", f"expected a PNG, received {image.format}"
        return np.asarray(image.convert("RGB"))


def colour_share(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 24) -> float:
    """Share of the pixels within ``tolerance`` (per channel) of the colour ``rgb``."""
    near = np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tolerance
    return float(near.mean())


def colourmap_share(
    pixels: np.ndarray, name: str, low: float = 0.0, high: float = 1.0, alpha: float = 1.0
) -> float:
    """Share of the pixels that are (within 6 per channel) a colour of the colour map ``name``
    between the fractions ``low`` and ``high`` of its range, drawn with ``alpha`` over black,
    ignoring near-greys (axes, text, background) unless the map itself is grey."""
    cmap = matplotlib.colormaps[name]
    rgb = np.array(cmap(np.linspace(low, high, 256)))[:, :3] * alpha
    table = (rgb * 255).round().astype(int)
    flat = pixels.reshape(-1, 3).astype(int)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    distance = np.abs(colours[:, None, :] - table[None, :, :]).max(axis=-1).min(axis=1)
    inside = distance <= 6
    if np.ptp(table, axis=1).max() > 24:  # a coloured map: greys are not its colours
        inside &= np.ptp(colours, axis=1) > 24
    return float(counts[inside].sum() / flat.shape[0])


def grey_levels(pixels: np.ndarray) -> int:
    """How many distinct grey values (R = G = B) the picture holds."""
    grey = (pixels[..., 0] == pixels[..., 1]) & (pixels[..., 1] == pixels[..., 2])
    return len(np.unique(pixels[..., 0][grey]))


def colour_columns(
    pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 24
) -> np.ndarray:
    """The x positions (columns) of the pixels within ``tolerance`` of the colour ``rgb``."""
    near = np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1) <= tolerance
    return np.nonzero(near)[1]


def ink_bands(pixels: np.ndarray, top: int, bottom: int, ink: int = 200) -> int:
    """How many separate bands of rows between ``top`` and ``bottom`` hold some ink (a pixel
    darker than ``ink`` on the white page): one per line of text not touching another."""
    rows = (pixels[top:bottom].min(axis=(1, 2)) < ink).tolist()
    return sum(1 for i, inked in enumerate(rows) if inked and (i == 0 or not rows[i - 1]))
