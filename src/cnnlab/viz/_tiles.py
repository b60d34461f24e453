"""Turning stacks of small 2-D arrays (feature maps, kernels) into one tiled picture.

The one place for seed 000's standardisation of a feature map and for the grid layout shared
by ``cnnlab features`` and ``cnnlab filters``.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def standardise_maps(maps: torch.Tensor) -> np.ndarray:
    """Make each map visually comparable, exactly as seed 000 does it::

        x -= x.mean(); x /= x.std(); x *= 64; x += 128; x = clip(x, 0, 255)

    so 128 is the map's mean and every 64 grey levels one standard deviation. A constant map
    (standard deviation 0, e.g. a dead ReLU channel) becomes uniform 128 instead of NaN.

    Shape:
        ``(C, H, W)`` float -> ``(C, H, W)`` uint8.
    """
    x = maps.detach().double().cpu()
    mean = x.mean(dim=(1, 2), keepdim=True)
    std = x.std(dim=(1, 2), keepdim=True, correction=0)  # numpy's x.std(), as in the seed
    z = torch.where(std > 0, (x - mean) / std.clamp_min(1e-12), torch.zeros_like(x))
    return (z * 64 + 128).clamp(0, 255).to(torch.uint8).numpy()


def grid_columns(count: int, minimum: int = 16) -> int:
    """Columns of a grid of ``count`` tiles: one row up to ``minimum`` tiles, then about four
    times wider than tall (16 -> 16 x 1, 64 -> 16 x 4, 256 -> 32 x 8, 512 -> 46 x 12)."""
    if count < 1:
        raise ValueError(f"expected at least one tile, received count={count}")
    return min(count, max(minimum, math.ceil(math.sqrt(4 * count))))


def tile_origins(count: int, columns: int, h: int, w: int, gap: int = 1) -> list[tuple[int, int]]:
    """Top-left pixel ``(row, column)`` of each of ``count`` tiles of ``h x w`` in a grid of
    ``columns`` columns with ``gap`` pixels between tiles, filled row by row."""
    return [((i // columns) * (h + gap), (i % columns) * (w + gap)) for i in range(count)]


def tile(tiles: np.ndarray, columns: int, gap: int = 1, fill: float = math.nan) -> np.ndarray:
    """Lay ``tiles`` out row by row in a grid, ``gap`` pixels of ``fill`` between them.

    The default fill (NaN) is drawn in the colour map's "bad" colour, so the gaps stay visible
    whatever the tiles' values; unused cells of the last row are filled too.

    Shape:
        ``(N, H, W)`` -> ``(rows * (H + gap) - gap, columns * (W + gap) - gap)`` float64 and
        ``(N, H, W, 3)`` -> the same with a trailing 3 (RGB), ``rows = ceil(N / columns)``.
    """
    n, h, w = tiles.shape[:3]
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap, *tiles.shape[3:]), fill)
    for i, (r, c) in enumerate(tile_origins(n, columns, h, w, gap)):
        grid[r : r + h, c : c + w] = tiles[i]
    return grid
