"""The in-memory dataset type every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cnnlab.errors import ConfigError


@dataclass
class ImageDataset:
    """Images and labels held in memory.

    Attributes:
        images: ``uint8`` tensor, shape ``(N, C, H, W)``.
        labels: ``int64`` tensor, shape ``(N,)``, values in ``[0, len(classes))``.
        classes: class names, index = label.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must have shape (N,)")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the stored images."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """The examples at ``indices`` (a 1-D int64 tensor), same classes."""
        return ImageDataset(self.images[indices], self.labels[indices], self.classes)


@dataclass
class DatasetSplits:
    """A dataset's splits. ``val`` is None until a validation split is carved or provided."""

    name: str
    train: ImageDataset
    test: ImageDataset
    val: ImageDataset | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes


def split_validation(
    data: ImageDataset, fraction: float, seed: int
) -> tuple[ImageDataset, ImageDataset]:
    """Carve a random, seeded, stratification-free validation split off ``data``.

    Args:
        fraction: share of examples held out, in ``(0, 1)``.
        seed: seeds the permutation, so the same seed always holds out the same examples.

    Returns:
        ``(train, val)``.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(
            f"expected a validation fraction in (0, 1), received val_split={fraction}"
        )
    n_val = max(1, round(len(data) * fraction))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.subset(order[n_val:].sort().values), data.subset(order[:n_val].sort().values)
