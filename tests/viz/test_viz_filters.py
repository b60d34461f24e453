"""Filters: the learned kernels of a conv layer, one tile per output channel, `cnnlab filters`."""

import math

import numpy as np
import pytest
import torch

from cnnlab import create_model
from cnnlab.errors import ConfigError
from cnnlab.runs import load_run
from cnnlab.viz import conv_filters, plot_filters
from cnnlab.viz.filters import FILTER_GAP, _layout, filters_grid
from pictures import colourmap_share, read_png


def tiles_in(filters):
    """The tiles of the grid, read back at their places, and the grid."""
    from cnnlab.viz._tiles import tile_origins

    tiles, columns, th, tw = _layout(filters)
    grid = filters_grid(filters)
    origins = tile_origins(len(tiles), columns, th, tw, FILTER_GAP)
    return [grid[r : r + th, c : c + tw] for r, c in origins], grid


def test_first_conv_by_default_one_tile_per_output_channel(trained_run):
    run = load_run(trained_run)
    filters = conv_filters(run)
    assert filters.layer.name == "features.0"
    torch.testing.assert_close(filters.weight, run.model.features[0].weight.detach())
    tiles, grid = tiles_in(filters)
    assert len(tiles) == filters.weight.shape[0] == 6
    for k, t in enumerate(tiles):
        np.testing.assert_allclose(t, filters.weight[k, 0].numpy())
    assert np.isnan(grid).sum() == grid.size - 6 * 25  # everything else is gap


def test_multi_channel_kernels_side_by_side(trained_run):
    filters = conv_filters(load_run(trained_run), "features.3")
    tiles, _ = tiles_in(filters)
    assert len(tiles) == 16 and tiles[0].shape == (5, 6 * 6 - 1)
    w = filters.weight.numpy()
    for k in (0, 15):
        for c in range(6):
            np.testing.assert_allclose(tiles[k][:, c * 6 : c * 6 + 5], w[k, c])


def test_rgb_kernels_are_colour_tiles(tmp_path, png):
    model = create_model("lenet5", in_channels=3)
    filters = conv_filters(model)
    assert filters.rgb
    tiles, grid = tiles_in(filters)
    assert grid.shape[-1] == 3 and len(tiles) == 6
    w = filters.weight.numpy()
    scale = np.abs(w).max()
    np.testing.assert_allclose(tiles[2], 0.5 + w[2].transpose(1, 2, 0) / (2 * scale))
    assert grid.min() >= 0 and grid.max() <= 1
    png(plot_filters(model, tmp_path / "rgb.png"))


def test_only_conv_layers(trained_run):
    with pytest.raises(ConfigError) as info:
        conv_filters(load_run(trained_run), "features.2")
    assert str(info.value) == (
        "expected a conv layer named as in `cnnlab summary` (features.0, features.3, "
        "features.6), received layer='features.2'"
    )


def test_cli_filters(trained_run, tmp_path, cli, png, one_line_error):
    for layer, out in [(None, "first.png"), ("features.6", "c5.png")]:
        extra = ["--layer", layer] if layer else []
        status, stdout, _ = cli("filters", trained_run, *extra, "--output", tmp_path / out)
        assert status == 0 and out in stdout
        width, height = png(tmp_path / out)
        assert width > 300 and height > 150
        pixels = read_png(tmp_path / out)  # positive and negative weights, red and blue
        assert colourmap_share(pixels, "RdBu_r", 0.0, 0.35) > 0.01
        assert colourmap_share(pixels, "RdBu_r", 0.65, 1.0) > 0.01
    # 120 filters x 16 channels: blocks laid out about 1.5 times wider than tall
    width, height = png(tmp_path / "c5.png")
    assert math.isclose(width / height, 1.5, rel_tol=0.5)
    status, _, err = cli("filters", trained_run, "--layer", "conv1", "--output", tmp_path / "x")
    one_line_error(status, err, "received layer='conv1'", "features.0, features.3, features.6")
