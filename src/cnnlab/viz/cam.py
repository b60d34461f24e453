"""Where the model looks: Grad-CAM and vanilla gradient saliency for one image.

Grad-CAM (Selvaraju et al., 2017): the class score's gradient with respect to a conv layer's
maps, averaged over each map, weights the maps; their ReLU'd sum, upsampled to the input,
is the heat map. Saliency (Simonyan et al., 2014): the absolute gradient of the class score
with respect to the input pixels, the largest over colour channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analysis import Field
from cnnlab.errors import ConfigError
from cnnlab.inference import eval_mode
from cnnlab.runs import Run
from cnnlab.viz._figure import new_figure, save_figure
from cnnlab.viz._inputs import for_display, model_input
from cnnlab.viz._layers import Layer, capture_outputs, choose_layers, is_conv, model_layers


def has_maps(layer: Layer) -> bool:
    """A layer whose output is maps larger than 1x1 (a 1x1 map carries no position)."""
    return layer.spatial and layer.output_shape[1:] != (1, 1)


def cam_layer(layers: Sequence[Layer]) -> Layer:
    """The layer Grad-CAM weighs by default: the rectified maps of the last conv layer with
    maps larger than 1x1, i.e. the last of the layers right after that conv that keep its
    output shape (its BatchNorm and activation), or the conv itself.

    Grad-CAM needs the maps after the non-linearity (a Keras ``Conv2D`` includes it; a torch
    ``Conv2d`` does not): on LeNet-5's pre-ReLU ``features.3`` the weighted sum is negative
    everywhere and the heat map empty, while the ReLU after it, ``features.4``, works. Where
    ``features.6``'s 120 maps are 1x1, ``features.3`` is LeNet-5's last spatial conv.

    Raises:
        ConfigError: the model has no conv layer with maps larger than 1x1.
    """
    convs = [layer for layer in layers if is_conv(layer) and has_maps(layer)]
    if not convs:
        raise ConfigError("expected a model with a conv layer whose maps are larger than 1x1")
    chosen = convs[-1]
    for layer in layers[list(layers).index(chosen) + 1 :]:
        if layer.output_shape != chosen.output_shape:
            break
        chosen = layer
    return chosen


def class_index(classes: Sequence[str], value: str | int) -> int:
    """The index of a class given by name (``"cat"``, ``"7"``) or by index (``3``).

    Raises:
        ConfigError: neither a class name nor an index of ``classes``.
    """
    if isinstance(value, str) and value in classes:
        return list(classes).index(value)
    text = str(value).strip()
    if text.isdigit() and int(text) < len(classes):
        return int(text)
    raise ConfigError(
        f"expected a class of the run ({', '.join(classes)}) or its index, received class={value!r}"
    )


def project_to_input(
    heat: torch.Tensor, field: Field | None, size: tuple[int, int]
) -> torch.Tensor:
    """Place a layer's map on the input pixels, each unit at the centre of its receptive field,
    bilinearly in between, fading to 0 within one unit beyond the outermost centres.

    Plain resizing would stretch the map over the whole input, which is wrong wherever the
    convolutions are not padded: LeNet-5's 10x10 ``features.3`` units sit at input pixels
    6.5, 8.5, ..., 24.5, not spread over 0..31. Without a known field (no grid), the map is
    resized.

    Shape:
        ``(h, w) -> (H, W)``, ``(H, W) = size``.
    """
    h, w = heat.shape
    if field is None or field.jump is None:
        return F.interpolate(heat[None, None], size=size, mode="bilinear")[0, 0]
    # unit coordinate of each input pixel, scaled to grid_sample's -1 (unit 0) .. 1 (last unit)
    ys = (torch.arange(size[0]) - field.start[0]) / field.jump[0] * 2 / max(h - 1, 1) - 1
    xs = (torch.arange(size[1]) - field.start[1]) / field.jump[1] * 2 / max(w - 1, 1) - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # H x W x (x, y)
    placed = F.grid_sample(
        heat[None, None].float(),
        grid[None].float(),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=True,
    )
    return placed[0, 0]


def _normalised(heat: torch.Tensor) -> torch.Tensor:
    top = heat.max()
    return heat / top if top > 0 else torch.zeros_like(heat)


def grad_cam(
    model: nn.Module, x: torch.Tensor, layer: Layer, target: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Grad-CAM and gradient saliency of one input for one class, in eval mode.

    Args:
        model: the classifier (left in the train/eval mode it was in; gradients of its
            weights are not touched).
        x: one preprocessed input.
        layer: the layer whose maps are weighted (:func:`cam_layer`).
        target: class index; default the predicted class.

    Shape:
        ``x: (1, C, H, W) -> cam (H, W), saliency (H, W)`` in 0..1 (1 = the largest value),
        ``logits (num_classes,)``.
    """
    x = x.detach().clone().requires_grad_(True)
    with (
        eval_mode(model),
        torch.enable_grad(),
        capture_outputs([layer]) as outputs,
    ):
        logits = model(x)[0]
        target = int(logits.argmax()) if target is None else target
        maps = outputs[layer.name]
        d_maps, d_x = torch.autograd.grad(logits[target], [maps, x])
    weights = d_maps[0].mean(dim=(1, 2), keepdim=True)  # K x 1 x 1
    cam = F.relu((weights * maps[0].detach()).sum(0))  # h x w
    cam = project_to_input(cam, layer.field, (x.shape[-2], x.shape[-1]))  # H x W
    saliency = d_x[0].abs().amax(0)  # H x W
    return _normalised(cam), _normalised(saliency), logits.detach()


@dataclass
class ClassMaps:
    """What :func:`class_maps` returns.

    Attributes:
        layer: the layer whose maps the Grad-CAM weighs.
        target: index of the class the maps explain.
        predicted: index of the predicted class.
        probabilities: softmax over the run's classes.
        cam: Grad-CAM heat map, upsampled to the input, 0..1.
        saliency: gradient saliency map, 0..1.
        pixels: the input as the model sees it (padding included), 0..255.

    Shape:
        ``cam, saliency: (H, W)``; ``pixels: (C, H, W)``; ``probabilities: (num_classes,)``.
    """

    layer: Layer
    target: int
    predicted: int
    probabilities: torch.Tensor
    cam: torch.Tensor
    saliency: torch.Tensor
    pixels: torch.Tensor


def class_maps(
    run: Run,
    image: str | Path,
    target: str | int | None = None,
    layer: str | None = None,
    invert: bool = False,
) -> ClassMaps:
    """Grad-CAM and saliency of an image file for the predicted (or a chosen) class.

    Args:
        run: a loaded run (:func:`~cnnlab.training.run.load_run`).
        image: PNG/JPEG/BMP file, converted exactly as the run's training data.
        target: class name or index; default the predicted class.
        layer: name, as in ``cnnlab summary``, of a layer with maps larger than 1x1; default
            :func:`cam_layer` (LeNet-5: ``features.4``, the ReLU of the last spatial conv).
        invert: invert grey levels first (dark digits on light paper -> MNIST's light on dark).

    Raises:
        ConfigError: an unknown class, or a name that is not a conv layer (valid ones listed).
        DataError / ModelError: an image that cannot be read, or that the model cannot take.
    """
    index = None if target is None else class_index(run.classes, target)
    given = model_input(run, image, invert)
    table = model_layers(run.model, given.x.shape[1:])
    if layer is None:
        chosen = cam_layer(table)
    else:
        (chosen,) = choose_layers(table, [layer], has_maps, "a layer with maps larger than 1x1")
    cam, saliency, logits = grad_cam(run.model, given.x, chosen, index)
    probabilities = logits.softmax(0)
    predicted = int(probabilities.argmax())
    return ClassMaps(
        chosen,
        predicted if index is None else index,
        predicted,
        probabilities,
        cam,
        saliency,
        given.pixels,
    )


def plot_cam(
    run: Run,
    image: str | Path,
    output: str | Path = "cam.png",
    target: str | int | None = None,
    layer: str | None = None,
    invert: bool = False,
) -> Path:
    """Draw the input, its Grad-CAM over it, and its saliency map side by side; the title
    gives the predicted class and its probability (and the explained class, if another).

    Returns:
        The PNG written.
    """
    maps = class_maps(run, image, target, layer, invert)
    names, p = run.classes, maps.probabilities
    shown = for_display(maps.pixels)
    grey = for_display(maps.pixels.mean(0, keepdim=True))
    c, h, w = maps.pixels.shape
    explained = f"class {names[maps.target]}"
    figure = new_figure(13, 4.6)
    axes = figure.subplots(1, 3)
    axes[0].imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title(f"{Path(image).name}\nas the model sees it ({c}x{h}x{w})", fontsize=10)
    axes[1].imshow(grey, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    heat = axes[1].imshow(maps.cam.numpy(), cmap="jet", vmin=0, vmax=1, alpha=0.5)
    bar = figure.colorbar(heat, ax=axes[1], fraction=0.046, pad=0.04, label="relative importance")
    bar.solids.set_alpha(1.0)  # the scale in full colour, not as blended over the image
    axes[1].set_title(f"Grad-CAM for {explained}\nat {maps.layer.label}", fontsize=10)
    sal = axes[2].imshow(maps.saliency.numpy(), cmap="inferno", vmin=0, vmax=1)
    figure.colorbar(sal, ax=axes[2], fraction=0.046, pad=0.04, label="|d score / d pixel|")
    axes[2].set_title(f"gradient saliency for {explained}", fontsize=10)
    for a in axes:
        a.set_axis_off()
    title = f"{run.meta.model.name}: predicted {names[maps.predicted]} ({p[maps.predicted]:.1%})"
    if maps.target != maps.predicted:
        title += f"; explaining class {names[maps.target]} ({p[maps.target]:.1%})"
    figure.suptitle(title, fontsize=12)
    return save_figure(figure, output)
