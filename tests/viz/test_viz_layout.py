"""What the pictures show, read from their pixels: the gaps between kernels are not the colour
of a zero weight, and ``show --augment``'s title stays clear of the column headers."""

from __future__ import annotations

import numpy as np

from cnnlab.runs import load_run
from cnnlab.viz import plot_filters
from cnnlab.viz.filters import GAP_COLOUR
from cnnlab.viz.show import show_dataset
from pictures import colour_share, ink_bands, read_png


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_filter_gaps_are_a_neutral_colour_not_a_zero_weight(trained_run, tmp_path):
    import matplotlib

    run = load_run(trained_run)
    pixels = read_png(plot_filters(run, tmp_path / "f.png"))
    gap = _rgb(GAP_COLOUR)
    zero = tuple(round(255 * v) for v in matplotlib.colormaps["RdBu_r"](0.5)[:3])
    assert max(abs(a - b) for a, b in zip(gap, zero)) > 40  # told apart at a glance
    assert colour_share(pixels, gap, tolerance=3) > 0.05  # the gaps are drawn in it
    # and between the input-channel kernels of a deeper layer's filters
    second = read_png(plot_filters(run, tmp_path / "g.png", layer="features.3"))
    assert colour_share(second, gap, tolerance=3) > 0.05


def test_show_augment_title_clear_of_the_column_headers(subset, cache_dir, tmp_path):
    out = show_dataset(
        "mnist-subset", tmp_path / "a.png", augment="rotation_range=10", count=16, versions=4,
        cache_dir=cache_dir,
    )  # fmt: skip
    pixels = read_png(out)
    dark = (pixels.max(axis=2) < 40).mean(axis=1)  # share of black pixels per row
    first_tile = int(np.argmax(dark > 0.3))  # MNIST tiles are black squares
    assert first_tile > 0
    # above the first row of tiles: the title line, then the header line, apart
    assert ink_bands(pixels, 0, first_tile) == 2
