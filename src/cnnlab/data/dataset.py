"""The dataset types every loader returns: splits held in memory, or streamed from files.

Every split answers the same few questions (:class:`ImageSplit`): how many examples, their
labels and classes, the examples at some indices, the images in batches in a given order, and
its pixel statistics. Training, evaluation, class selection and validation splits use only
these, so they never ask whether the pixels are in memory (:class:`ImageDataset`) or decoded
from files on demand (:class:`cnnlab.data.stream.StreamedDataset`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import torch

from cnnlab.data.pixel_stats import PixelMoments
from cnnlab.errors import ConfigError

Split = TypeVar("Split", bound="ImageSplit")


class ImageSplit(Protocol):
    """What every split offers (in memory or streamed).

    Attributes:
        labels: ``int64`` tensor, shape ``(N,)``, values in ``[0, len(classes))``.
        classes: class names, index = label.
        streamed: True when images are decoded from files on demand.
    """

    labels: torch.Tensor
    classes: tuple[str, ...]
    streamed: ClassVar[bool]

    def __len__(self) -> int: ...

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the stored images."""

    def subset(self: Split, indices: torch.Tensor) -> Split:
        """The examples at ``indices`` (a 1-D int64 tensor), same classes."""

    def take(self, indices: torch.Tensor) -> torch.Tensor:
        """The images at ``indices``. Shape: ``(k,) -> (k, C, H, W)`` uint8."""

    def batches(self, batch_size: int, order: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """The images in batches of ``batch_size`` following ``order`` (default: stored
        order). Shape: each ``(<= batch_size, C, H, W)`` uint8."""

    def to(self: Split, device: torch.device) -> Split:
        """The split prepared for batches used on ``device``."""

    def pixel_moments(self) -> PixelMoments:
        """Exact pixel sums of the whole split (normalisation and PCA statistics)."""


def describe_split(kind: str, count: int, shape: tuple[int, ...], classes: Any) -> str:
    """A split's one-line repr: counts, image shape and class names, never the tensors."""
    names = list(classes or ())
    shown = ", ".join(names) if len(names) <= 12 else ", ".join(names[:10]) + ", ..."
    size = "x".join(map(str, shape))
    return f"{kind}({count:,} images of {size}, {len(names)} classes: {shown})"


@dataclass(repr=False)
class TensorSplit:
    """Examples held in memory as tensors, batched by indexing.

    Attributes:
        images: shape ``(N, ...)``.
        labels: ``int64`` tensor, shape ``(N,)``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    streamed: ClassVar[bool] = False

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        shape = tuple(self.images.shape[1:])
        return describe_split(type(self).__name__, len(self), shape, getattr(self, "classes", ()))

    def subset(self: Split, indices: torch.Tensor) -> Split:
        """The examples at ``indices`` (a 1-D int64 tensor)."""
        return dataclasses.replace(self, images=self.images[indices], labels=self.labels[indices])

    def take(self, indices: torch.Tensor) -> torch.Tensor:
        """The images at ``indices``. Shape: ``(k,) -> (k, ...)``."""
        return self.images[indices]

    def batches(self, batch_size: int, order: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """The images in batches following ``order`` (default: stored order, as views).

        Shape:
            each ``(<= batch_size, ...)``, on the device of ``images``.
        """
        if order is None:
            yield from self.images.split(batch_size)
            return
        for indices in order.split(batch_size):
            yield self.images[indices]

    def to(self: Split, device: torch.device) -> Split:
        """The same examples with images and labels on ``device``."""
        return dataclasses.replace(
            self, images=self.images.to(device), labels=self.labels.to(device)
        )


@dataclass(repr=False)
class ImageDataset(TensorSplit):
    """Images and labels held in memory.

    Attributes:
        images: ``uint8`` tensor, shape ``(N, C, H, W)``.
        labels: ``int64`` tensor, shape ``(N,)``, values in ``[0, len(classes))``.
        classes: class names, index = label.
    """

    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError("labels must have shape (N,)")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the stored images."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def pixel_moments(self) -> PixelMoments:
        """Exact pixel sums of all the images (see :mod:`cnnlab.data.pixel_stats`)."""
        return PixelMoments.of_images(self.images)


@dataclass
class DatasetSplits:
    """A dataset's splits. ``val`` is None until a validation split is carved or provided."""

    name: str
    train: ImageSplit
    test: ImageSplit
    val: ImageSplit | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        return self.train.classes


def split_validation(data: Split, fraction: float, seed: int) -> tuple[Split, Split]:
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
