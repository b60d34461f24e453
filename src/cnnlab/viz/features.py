"""Feature maps: what every conv and pool layer computes for one image (seed 000's picture)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.inference import eval_mode
from cnnlab.runs import Run
from cnnlab.viz._figure import colormap, new_figure, save_figure
from cnnlab.viz._inputs import for_display, model_input
from cnnlab.viz._layers import (
    Layer,
    capture_outputs,
    choose_layers,
    is_conv_or_pool,
    model_layers,
)
from cnnlab.viz._tiles import grid_columns, standardise_maps, tile

FIGURE_WIDTH = 12.0  # inches; panel sizes below are fractions of it


@dataclass
class FeatureMaps:
    """The output of one layer for one image.

    Attributes:
        layer: the layer (name as in ``cnnlab summary``, module, output shape).
        maps: its output, one map per channel.

    Shape:
        ``maps``: ``(C, H, W)`` float32.
    """

    layer: Layer
    maps: torch.Tensor

    def __repr__(self) -> str:
        return f"FeatureMaps({self.layer.label})"


def _default(layer: Layer) -> bool:
    """Conv and pool layers whose maps have more than one pixel (a 1x1 map shows nothing)."""
    return is_conv_or_pool(layer) and layer.spatial and layer.output_shape[1:] != (1, 1)


def feature_maps(
    run: Run,
    image: str | Path,
    layers: Sequence[str] | None = None,
    invert: bool = False,
) -> list[FeatureMaps]:
    """Run one image through the model (in eval mode) and keep the feature maps of some layers.

    Args:
        run: a loaded run (:func:`~cnnlab.training.run.load_run`).
        image: PNG/JPEG/BMP file, converted exactly as the run's training data.
        layers: layer names as in ``cnnlab summary``, any layer with ``C x H x W`` output;
            default: every conv and pool layer with maps larger than 1x1.
        invert: invert grey levels first (dark digits on light paper -> MNIST's light on dark).

    Shape:
        ``image -> [(C_l, H_l, W_l) for each layer l]``.

    Raises:
        ConfigError: a name that is not a layer with ``C x H x W`` output (the valid ones are
            listed).
        DataError / ModelError: an image that cannot be read, or that the model cannot take.
    """
    given = model_input(run, image, invert)
    table = model_layers(run.model, given.x.shape[1:])
    if layers:
        chosen = choose_layers(table, layers, lambda layer: layer.spatial, "layers with CxHxW maps")
    else:
        chosen = [layer for layer in table if _default(layer)]
    with capture_outputs(chosen) as outputs, eval_mode(run.model), torch.no_grad():
        run.model(given.x)
    return [FeatureMaps(layer, outputs[layer.name][0].float()) for layer in chosen]


def plot_features(
    run: Run,
    image: str | Path,
    output: str | Path = "features.png",
    layers: Sequence[str] | None = None,
    invert: bool = False,
) -> Path:
    """Draw :func:`feature_maps` as one tiled grid per layer, titled with name and shape.

    Each map is standardised as in seed 000 (:func:`cnnlab.viz._tiles.standardise_maps`)
    and drawn with the viridis colour map, one tile per channel, channel 0 first.

    Returns:
        The PNG written.
    """
    found = feature_maps(run, image, layers, invert)
    pixels = model_input(run, image, invert).pixels
    grids = [
        tile(standardise_maps(item.maps).astype(float), grid_columns(len(item.maps)))
        for item in found
    ]
    # each panel spans the width; the input is drawn at the scale of the first layer's tiles
    first_w = found[0].maps.shape[-1] / grids[0].shape[1] if found else 0.1
    input_w = min(0.25, pixels.shape[-1] / pixels.shape[-2] * 0.12, first_w * 1.2)
    panels: list[tuple[float, float]] = [(input_w, input_w * pixels.shape[-2] / pixels.shape[-1])]
    panels += [(1.0, min(0.5, g.shape[0] / g.shape[1])) for g in grids]
    title_h, margin = 0.4, 0.9  # inches: above each panel; suptitle and caption
    heights = [FIGURE_WIDTH * h + title_h for _, h in panels]
    total = sum(heights) + margin
    figure = new_figure(FIGURE_WIDTH, total)
    top = total - 0.55
    axes_list = []
    for (w, h), height in zip(panels, heights):
        top -= height
        axes_list.append(figure.add_axes((0.0, top / total, w, FIGURE_WIDTH * h / total)))
    c, ih, iw = pixels.shape
    axes_list[0].imshow(for_display(pixels), cmap="gray", vmin=0, vmax=1)
    axes_list[0].set_title(f"input {c}x{ih}x{iw} as the model sees it", fontsize=10, loc="left")
    axes_list[0].set_axis_off()
    cmap = colormap("viridis")
    for axes, item, grid in zip(axes_list[1:], found, grids):
        axes.imshow(grid, cmap=cmap, vmin=0, vmax=255, interpolation="nearest", aspect="auto")
        channels = item.maps.shape[0]
        axes.set_title(f"{item.layer.label}  -  {channels} maps", fontsize=10, loc="left")
        axes.set_axis_off()
    model = run.meta.model.name
    figure.suptitle(f"Feature maps of {model} for {Path(image).name}", fontsize=12, y=1.0)
    figure.text(
        0.5,
        0.1 / total,
        "each map standardised on its own (as in the LeNet-5 article): 128 = its mean, +-64 = "
        "one standard deviation; tiles left to right = channels 0, 1, ...",
        ha="center",
        fontsize=8,
        color="dimgrey",
    )
    return save_figure(figure, output)
