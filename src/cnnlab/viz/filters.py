"""Filters: the learned kernels of one conv layer, drawn as a grid."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch import nn

from cnnlab.errors import ConfigError, expected
from cnnlab.runs import Run
from cnnlab.viz._figure import colormap, new_figure, save_figure
from cnnlab.viz._layers import Layer, choose_layers, is_conv, model_layers
from cnnlab.viz._tiles import tile, tile_origins


@dataclass
class Filters:
    """The kernels of one conv layer.

    Attributes:
        layer: the layer (name as in ``cnnlab summary``, module, output shape).
        weight: its kernels, one per output channel.

    Shape:
        ``weight``: ``(out_channels, in_channels / groups, kH, kW)`` float32.
    """

    layer: Layer
    weight: torch.Tensor

    @property
    def rgb(self) -> bool:
        """Whether each kernel has 3 input channels, drawn as one colour picture."""
        return self.weight.shape[1] == 3

    def __repr__(self) -> str:
        out, inp, kh, kw = self.weight.shape
        return f"Filters({self.layer.name}: {out} kernels of {inp}x{kh}x{kw})"


def conv_filters(model: Run | nn.Module, layer: str | None = None) -> Filters:
    """The kernels of a conv layer.

    Args:
        model: a loaded run (:func:`~cnnlab.training.run.load_run`) or a model with a
            ``default_input_shape``.
        layer: conv layer name as in ``cnnlab summary``; default: the first conv layer run.

    Raises:
        ConfigError: ``layer`` is not a conv layer of the model (the valid names are listed),
            or the model has no conv layer.
    """
    if isinstance(model, nn.Module):
        net, shape = model, tuple(model.default_input_shape)
    else:
        net = model.model
        shape = (model.preprocessing.channels, *model.preprocessing.input_size)
    table = model_layers(net, shape)
    if layer is not None:
        (chosen,) = choose_layers(table, [layer], is_conv, "a conv layer")
    else:
        convs = [item for item in table if is_conv(item)]
        if not convs:
            raise ConfigError(expected("a model with a conv layer", model=type(net).__name__))
        chosen = convs[0]
    return Filters(chosen, chosen.module.weight.detach().float().cpu())


#: Pixels between filters; room for their numbers above each one.
FILTER_GAP = 3
#: The colour of the gaps between kernels: a neutral grey, distinct from the near-white that
#: the diverging colour map gives a zero weight (gaps must not read as weights).
GAP_COLOUR = "#b4b4b4"
#: Filters are numbered up to this many (the number of a filter is the channel of the
#: feature map it makes, as in ``cnnlab features``).
NUMBERED = 64


def _layout(filters: Filters) -> tuple[np.ndarray, int, int, int]:
    """Tiles of one filter each and the grid's shape: ``(tiles, columns, tile_h, tile_w)``.

    An RGB kernel is one colour tile (weights mapped to 0..1, 0 at mid-grey, one scale for the
    layer); otherwise a filter's tile is its kernels for input channels 0, 1, ... side by side
    (1 pixel apart). Filters are laid out about 1.5 times wider than tall.

    Shape:
        ``(out, 3, kH, kW) -> (out, kH, kW, 3)`` in 0..1; ``(out, in, kH, kW) -> (out, kH,
        in * (kW + 1) - 1)`` weights.
    """
    w = filters.weight.numpy()
    out, inp = w.shape[:2]
    if filters.rgb:
        scale = max(float(np.abs(w).max()), 1e-12)
        tiles = 0.5 + w.transpose(0, 2, 3, 1) / (2 * scale)  # out x kH x kW x 3
    else:
        tiles = np.stack([tile(kernels, inp) for kernels in w])  # out x kH x (in*(kW+1)-1)
    th, tw = tiles.shape[1:3]
    columns = max(1, min(out, round(math.sqrt(1.5 * out * (th + FILTER_GAP) / (tw + FILTER_GAP)))))
    return tiles, columns, th, tw


def filters_grid(filters: Filters) -> np.ndarray:
    """The picture of :func:`plot_filters` before colouring: one tile per output channel.

    Shape:
        ``(out, 3, kH, kW) -> (H', W', 3)`` in 0..1 (white gaps); ``(out, in, kH, kW) ->
        (H', W')`` weights (NaN gaps), ``FILTER_GAP`` pixels between filters.
    """
    tiles, columns, _, _ = _layout(filters)
    return tile(tiles, columns, gap=FILTER_GAP, fill=1.0 if filters.rgb else math.nan)


def plot_filters(
    model: Run | nn.Module,
    output: str | Path = "filters.png",
    layer: str | None = None,
) -> Path:
    """Draw the kernels of a conv layer (the first one by default) as a grid, numbered.

    Single- and multi-channel kernels use a diverging colour map centred on 0 (red positive,
    blue negative) with a colour bar; 3-channel kernels are drawn as RGB pictures.

    Returns:
        The PNG written.
    """
    filters = conv_filters(model, layer)
    _, columns, th, tw = _layout(filters)
    grid = filters_grid(filters)
    out, inp, kh, kw = filters.weight.shape
    rows_px, cols_px = grid.shape[:2]
    pixel = min(0.16, 9.0 / cols_px, 12.0 / rows_px)  # inches per kernel pixel
    img_w, img_h = cols_px * pixel, rows_px * pixel
    fig_w, fig_h = img_w + 1.6, img_h + 1.2
    figure = new_figure(fig_w, fig_h)
    axes = figure.add_axes((0.2 / fig_w, 0.2 / fig_h, img_w / fig_w, img_h / fig_h))
    if filters.rgb:
        axes.imshow(grid, interpolation="nearest")
        how = "RGB, mid-grey = 0"
    else:
        scale = float(np.nanmax(np.abs(grid)))
        image = axes.imshow(
            grid,
            cmap=colormap("RdBu_r", bad=GAP_COLOUR),
            vmin=-scale,
            vmax=scale,
            interpolation="nearest",
        )
        bar = figure.add_axes(((img_w + 0.45) / fig_w, 0.2 / fig_h, 0.15 / fig_w, img_h / fig_h))
        figure.colorbar(image, cax=bar, label="weight")
        how = "red > 0 > blue" if inp == 1 else f"each filter: its {inp} input-channel kernels"
    for k, (r, c) in enumerate(tile_origins(out, columns, th, tw, FILTER_GAP)):
        if inp > 1 and not filters.rgb:  # frame each filter's kernels together
            frame = Rectangle((c - 0.5, r - 0.5), tw, th, fill=False, lw=0.8, ec="dimgrey")
            axes.add_patch(frame)
        if out <= NUMBERED:
            axes.text(c + tw / 2 - 0.5, r - 0.7, str(k), ha="center", va="bottom", fontsize=7)
    axes.set_axis_off()
    axes.set_title(
        f"{out} filters of {filters.layer.name} ({type(filters.layer.module).__name__}), "
        f"kernels {inp}x{kh}x{kw}\n{how}; filter k makes feature map k",
        fontsize=10,
        pad=12,
    )
    return save_figure(figure, output)
