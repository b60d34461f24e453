"""Image files decoded by path, in DataLoader worker processes: the one conversion of folders.

Every folder image becomes model data through :class:`ImageFiles` (which calls
:func:`cnnlab.data.images.load_image`, the conversion ``cnnlab predict`` uses), whether a folder
is decoded once into memory (:func:`decode_images`), indexed before streaming
(:func:`cnnlab.data.stream.index_files`) or streamed batch by batch during training. So the
pixels are identical in all three.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from cnnlab.data.images import DEFAULT_MAX_MEGAPIXELS, load_image
from cnnlab.errors import ConfigError, DataError, expected

PARALLEL_FROM = 256  # decode in worker processes from this many files on
FILES_PER_BATCH = 64  # files a worker decodes per task when decoding or indexing a folder


@dataclass(frozen=True)
class FolderOptions:
    """How the images of a folder are converted (stored in the run as ``data_options``).

    Attributes:
        image_size: ``(H, W)`` every image is resized to.
        channels: 1 (grey-scale) or 3 (RGB).
        strict: reject the folder when any file is not a decodable image.
        max_megapixels: the pixel budget of one image (:func:`cnnlab.data.images.load_image`);
            a larger image counts as undecodable.
    """

    image_size: tuple[int, int]
    channels: int = 3
    strict: bool = False
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS

    def to_dict(self) -> dict[str, object]:
        """JSON-able; ``max_megapixels`` only when not the default (so runs and cache keys
        from before it existed stay the same)."""
        data: dict[str, object] = {
            "image_size": list(self.image_size),
            "channels": self.channels,
            "strict": self.strict,
        }
        if self.max_megapixels != DEFAULT_MAX_MEGAPIXELS:
            data["max_megapixels"] = self.max_megapixels
        return data

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the converted images."""
        return self.channels, self.image_size[0], self.image_size[1]


def default_workers() -> int:
    """Decoding processes when not told: ``min(4, cores)``."""
    return min(4, os.cpu_count() or 1)


def check_workers(workers: int | None) -> int:
    """``workers`` checked (None: :func:`default_workers`); 0 decodes in this process.

    Raises:
        ConfigError: not a whole number >= 0.
    """
    if workers is None:
        return default_workers()
    if type(workers) is not int or workers < 0:
        raise ConfigError(expected("a whole number of workers >= 0", workers=workers))
    return workers


class ImageFiles(Dataset):
    """Image files decoded one by one (what DataLoader workers run).

    ``dataset[i]`` is ``(i, image, ok)``; an undecodable file gives a zero image and
    ``ok=False`` instead of raising, so one bad file never kills a worker.

    Shape:
        ``image``: ``(channels, H, W)`` uint8.
    """

    def __init__(self, paths: Sequence[str | Path], options: FolderOptions) -> None:
        self.paths = paths
        self.options = options

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, bool]:
        size, channels = self.options.image_size, self.options.channels
        try:
            budget = self.options.max_megapixels
            return index, load_image(self.paths[index], channels, size, False, budget), True
        except DataError:
            return index, torch.zeros(channels, *size, dtype=torch.uint8), False


def collect(
    files: Dataset, shape: tuple[int, ...], dtype: torch.dtype, workers: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a dataset of ``(index, value, ok)`` items over all its files, in parallel worker
    processes (in this process for fewer than ``PARALLEL_FROM`` files).

    Shape:
        ``-> (N, *shape) dtype, (N,) bool`` (False: the file could not be decoded).
    """
    n = len(files)
    values = torch.zeros(n, *shape, dtype=dtype)
    ok = torch.zeros(n, dtype=torch.bool)
    loader = DataLoader(
        files,
        batch_size=FILES_PER_BATCH,
        num_workers=check_workers(workers) if n >= PARALLEL_FROM else 0,
        generator=torch.Generator(),  # worker seeds: never drawn from the global RNG
    )
    for index, batch, good in loader:  # default collate stacks each field
        values[index] = batch
        ok[index] = good
    return values, ok


def decode_images(
    paths: Sequence[str | Path], options: FolderOptions, workers: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode files in parallel worker processes (in-process for few files).

    Shape:
        ``-> (N, C, H, W) uint8, (N,) bool`` (False: the file could not be decoded).
    """
    return collect(ImageFiles(paths, options), options.image_shape, torch.uint8, workers)
