"""Exact pixel statistics of uint8 images: per-channel sums and cross-channel products.

Normalisation (mean and standard deviation per channel) and AlexNet's PCA colour augmentation
(the 3x3 channel covariance) are both functions of three exact integers per channel pair: the
pixel count, the sums ``sum x_c`` and the products ``sum x_c x_d``. Summed as integers they are
the same whichever way the images are grouped, so a split held in memory and the same split
streamed from disk batch by batch (each file's moments computed once, when the folder is
indexed) give bitwise the same mean, standard deviation and eigenvectors.

Each image's sums are computed in float64, exactly: every partial sum is an integer below
``H * W * 255**2``, far under 2**53.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

CHUNK_ELEMENTS = 1 << 22  # pixels converted to float64 at a time (32 MiB)


def moments_width(channels: int) -> int:
    """Numbers per image in :func:`image_moments` rows: ``C`` sums, then ``C * C`` products."""
    return channels + channels * channels


def image_moments(images: torch.Tensor) -> torch.Tensor:
    """Every image's exact pixel sums and channel products.

    Shape:
        ``(N, C, H, W) uint8 -> (N, C + C*C) int64``: ``[:, :C]`` is ``sum x_c`` and
        ``[:, C:]`` the row-major ``(C, C)`` matrix ``sum x_c x_d`` of each image.
    """
    c = images.shape[1]
    per_image = max(1, c * images.shape[2] * images.shape[3])
    rows = []
    for chunk in images.split(max(1, CHUNK_ELEMENTS // per_image)):
        x = chunk.reshape(chunk.shape[0], c, -1).double()  # n x C x HW
        sums = x.sum(dim=2)  # n x C
        products = torch.bmm(x, x.transpose(1, 2)).reshape(chunk.shape[0], c * c)  # n x C*C
        rows.append(torch.cat([sums, products], dim=1).to(torch.int64))
    return torch.cat(rows) if rows else torch.zeros(0, moments_width(c), dtype=torch.int64)


@dataclass(frozen=True)
class PixelMoments:
    """The summed moments of a set of images.

    Attributes:
        count: pixels per channel (``N * H * W``).
        sums: ``sum x_c`` per channel, as Python integers (exact).
        products: ``sum x_c x_d``, ``C x C`` nested tuples of Python integers.
    """

    count: int
    sums: tuple[int, ...]
    products: tuple[tuple[int, ...], ...]

    @classmethod
    def from_rows(cls, rows: torch.Tensor, pixels_per_image: int) -> PixelMoments:
        """Sum the rows of :func:`image_moments` (of images with ``pixels_per_image`` pixels
        per channel).

        Shape:
            ``rows``: ``(N, C + C*C)`` int64.
        """
        c = math.isqrt(rows.shape[1])  # the width is C + C^2, and C^2 <= C + C^2 < (C + 1)^2
        total = rows.sum(dim=0).tolist()
        products = tuple(tuple(total[c + i * c : c + (i + 1) * c]) for i in range(c))
        return cls(rows.shape[0] * pixels_per_image, tuple(total[:c]), products)

    @classmethod
    def of_images(cls, images: torch.Tensor) -> PixelMoments:
        """The moments of a uint8 batch. Shape: ``(N, C, H, W)``."""
        return cls.from_rows(image_moments(images), images.shape[-2] * images.shape[-1])

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and (unbiased) standard deviation, scaled to ``[0, 1]``."""
        n = self.count
        mean = tuple(s / n / 255.0 for s in self.sums)
        variance = [(self.products[i][i] * n - s * s) / _pairs(n) for i, s in enumerate(self.sums)]
        std = tuple(max(math.sqrt(max(v, 0.0)) / 255.0, 1e-8) for v in variance)
        return mean, std

    def covariance(self) -> torch.Tensor:
        """The (unbiased) channel covariance on a 0-1 pixel scale.

        Shape:
            ``-> (C, C)`` float64.
        """
        n, s = self.count, self.sums
        rows = [
            [(p * n - s[i] * s[j]) / _pairs(n) / 255.0**2 for j, p in enumerate(row)]
            for i, row in enumerate(self.products)
        ]
        return torch.tensor(rows, dtype=torch.float64)


def _pairs(n: int) -> int:
    """``n (n - 1)``: the denominator of the unbiased (co)variance from integer sums (the
    numerator ``n sum x y - sum x sum y`` is an exact integer); 1 for a single pixel."""
    return max(n * (n - 1), 1)
