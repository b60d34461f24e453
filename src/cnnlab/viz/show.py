"""``cnnlab show``: a labelled grid of training images, optionally beside augmented versions.

Without augmentation this is seed 000's 4x4 grid of training pictures, each titled with its
class. With ``augment`` every row is one image: the original, then ``versions`` random
augmentations of it, exactly as training would draw them (same :class:`Augmenter`, same
parameters, PCA fitted on the same training split).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.augment import Augmenter, pca_of
from cnnlab.data.augment_spec import parse_augment
from cnnlab.data.datasets import load_dataset
from cnnlab.errors import ConfigError
from cnnlab.viz._figure import new_figure, save_figure

TILE_INCHES = 1.6


def show_dataset(
    data: str,
    output: str | Path = "show.png",
    *,
    augment: str | None = None,
    count: int = 16,
    versions: int = 4,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    image_size: tuple[int, int] | list[int] | None = None,
    channels: int | None = None,
) -> Path:
    """Draw ``count`` random training images of ``data`` (and augmented versions) to a PNG.

    Args:
        data: dataset name or image folder.
        augment: ``--augment`` text; None or empty draws the plain grid.
        count: images (rows when augmenting; a near-square grid otherwise).
        versions: augmented versions per image.
        seed: picks the images and the augmentations.
        image_size, channels: image-folder options (see :func:`cnnlab.load_dataset`).

    Returns:
        The PNG path.

    Raises:
        ConfigError: ``count`` or ``versions`` below 1, or a bad augmentation spec.
    """
    if count < 1 or versions < 1:
        raise ConfigError(
            f"expected count >= 1 and versions >= 1, received count={count}, versions={versions}"
        )
    spec = parse_augment(augment)
    folder = {"image_size": image_size, "channels": channels}
    splits = load_dataset(data, cache_dir, **{k: v for k, v in folder.items() if v is not None})
    train = splits.train
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(len(train), generator=generator)[:count]
    images, labels = train.take(chosen), train.labels[chosen]  # streamed: only these decode
    names = [train.classes[i] for i in labels.tolist()]
    if not spec.enabled:
        return plot_image_grid(images, names, output, title=f"{data}: training images")
    pca = pca_of(train.pixel_moments()) if spec.pca_lighting else None
    batch = images.repeat(versions, 1, 1, 1)  # (versions * n) x C x H x W, version-major
    augmented = Augmenter(spec, pca)(batch, generator)
    augmented = augmented.view(versions, len(images), *images.shape[1:]).transpose(0, 1)
    return plot_augmented(images, augmented, names, output, title=f"{data}: {spec.to_string()}")


def plot_image_grid(
    images: torch.Tensor, names: list[str], output: str | Path, title: str = ""
) -> Path:
    """A near-square grid of images, each titled with its class.

    Shape:
        ``images``: ``(N, C, H, W)`` uint8 (or float 0-255), C = 1 or 3.
    """
    n = len(images)
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    figure = new_figure(columns * TILE_INCHES, rows * TILE_INCHES + 0.4)
    for i in range(n):
        axes = figure.add_subplot(rows, columns, i + 1)
        _draw(axes, images[i])
        axes.set_title(names[i], fontsize=10)
    if title:
        figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    return save_figure(figure, output)


def plot_augmented(
    images: torch.Tensor,
    augmented: torch.Tensor,
    names: list[str],
    output: str | Path,
    title: str = "",
) -> Path:
    """One row per image: the original (titled with its class), then its augmented versions.

    Shape:
        ``images``: ``(N, C, H, W)``; ``augmented``: ``(N, V, C, H, W)``; pixel scale 0-255.
    """
    n, versions = augmented.shape[:2]
    columns = versions + 1
    figure = new_figure(columns * TILE_INCHES * 0.8, n * TILE_INCHES * 0.8 + 0.5)
    figure.set_layout_engine("constrained")  # keeps the title above the column headers
    for row in range(n):
        for column in range(columns):
            axes = figure.add_subplot(n, columns, row * columns + column + 1)
            _draw(axes, images[row] if column == 0 else augmented[row, column - 1])
            if column == 0:
                axes.set_title(names[row], fontsize=9)
            elif row == 0:
                axes.set_title(f"augmented {column}", fontsize=9)
    if title:
        figure.suptitle(textwrap.fill(title.replace(",", ", "), 12 * columns), fontsize=10)
    return save_figure(figure, output)


def _draw(axes, image: torch.Tensor) -> None:
    """Show one ``(C, H, W)`` image on its own 0-255 scale, no ticks, thin frame."""
    array = image.detach().float().clamp(0, 255).round().to(torch.uint8).cpu().numpy()
    if array.shape[0] == 1:
        axes.imshow(array[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        axes.imshow(np.transpose(array, (1, 2, 0)), interpolation="nearest")
    axes.set_xticks([])
    axes.set_yticks([])
