"""Streaming image folders too large for memory: files decoded on demand, batch by batch.

A streamed split holds the paths, the labels and each file's exact pixel moments
(:mod:`cnnlab.data.pixel_stats`; 16 bytes per grey-scale file, 96 per RGB file), never the
decoded images. :meth:`StreamedDataset.batches`
runs a torch ``DataLoader`` whose batch sampler follows the given order (the training loop's
``epoch_order``); its worker processes open the files by path and convert them with
:class:`cnnlab.data.image_files.ImageFiles`, the conversion of the in-memory path, and prefetch
batches while the model trains. So a streamed run sees the same batches of the same pixels as
an in-memory run with the same seed, and resumes mid-epoch at the same batch.

Before anything streams, the folder is indexed in one pass (:func:`index_files`, in worker
processes too): every file is decoded once, its moments are kept and the undecodable files are
found, so they are reported (or rejected under ``strict``) up front and training never meets a
bad file. Normalisation statistics and PCA colour augmentation of any selection of a split are
then sums of the moments of its files. The index is cached like decoded folders
(:mod:`cnnlab.data.folder_cache`), so the pass runs again only when the files change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader

from cnnlab.data.dataset import describe_split
from cnnlab.data.folder_cache import cached_entry, entry_path
from cnnlab.data.folder_scan import FolderScan
from cnnlab.data.image_files import FolderOptions, ImageFiles, collect, decode_images
from cnnlab.data.pixel_stats import PixelMoments, image_moments, moments_width
from cnnlab.errors import DataError


@dataclass(repr=False)
class StreamedDataset:
    """Images decoded from their files on demand (see the module docstring).

    Attributes:
        paths: the image files, shape ``(N,)`` (a NumPy string array: no per-path Python
            objects for forked workers to copy).
        labels: ``int64`` tensor, shape ``(N,)``, values in ``[0, len(classes))``.
        classes: class names, index = label.
        options: how files are converted (size, channels).
        moments: each file's pixel sums, ``(N, C + C*C)`` int64
            (:func:`cnnlab.data.pixel_stats.image_moments`).
        workers: decoding processes per batch stream (0: in this process).
        pin_memory: pin batches in page-locked memory (set by :meth:`to` for CUDA).
    """

    paths: np.ndarray
    labels: torch.Tensor
    classes: tuple[str, ...]
    options: FolderOptions
    moments: torch.Tensor
    workers: int
    pin_memory: bool = False
    streamed: ClassVar[bool] = True

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return describe_split("StreamedDataset", len(self), self.image_shape, self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the converted images."""
        return self.options.image_shape

    def subset(self, indices: torch.Tensor) -> StreamedDataset:
        """The files at ``indices`` (a 1-D int64 tensor), same classes."""
        chosen = indices.cpu().numpy()
        return dataclasses.replace(
            self,
            paths=self.paths[chosen],
            labels=self.labels[indices],
            moments=self.moments[indices],
        )

    def take(self, indices: torch.Tensor) -> torch.Tensor:
        """Decode the images at ``indices``. Shape: ``(k,) -> (k, C, H, W)`` uint8.

        Raises:
            DataError: a file cannot be decoded any more (the folder changed).
        """
        positions = indices.cpu().numpy()
        images, ok = decode_images(self.paths[positions], self.options, self.workers)
        self._check_decoded(positions, ok)
        return images

    def batches(self, batch_size: int, order: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """Decode the images batch by batch following ``order`` (default: stored order), in
        ``workers`` processes that prefetch ahead of the consumer.

        Shape:
            each ``(<= batch_size, C, H, W)`` uint8, on the CPU (pinned when :meth:`to` was
            given a CUDA device).

        Raises:
            DataError: a file cannot be decoded any more (the folder changed).
        """
        order = torch.arange(len(self)) if order is None else order
        loader = DataLoader(
            ImageFiles(self.paths, self.options),
            batch_sampler=BatchSampler(order.tolist(), batch_size, drop_last=False),
            num_workers=self.workers,
            pin_memory=self.pin_memory,
            generator=torch.Generator(),  # worker seeds: never drawn from the global RNG
        )
        for indices, images, ok in loader:
            self._check_decoded(indices.numpy(), ok)
            yield images

    def to(self, device: torch.device) -> StreamedDataset:
        """The same files, with batches pinned for a CUDA ``device`` (they are decoded on the
        CPU; the consumer moves each batch)."""
        return dataclasses.replace(self, pin_memory=torch.device(device).type == "cuda")

    def pixel_moments(self) -> PixelMoments:
        """Exact pixel sums of all the files (from the index, nothing is decoded)."""
        h, w = self.options.image_size
        return PixelMoments.from_rows(self.moments, h * w)

    def fingerprint(self) -> str:
        """SHA-256 of the conversion and of every file's path, size and modification time:
        it changes when the images would (the key of cached features)."""
        options = self.options.to_dict()
        options.pop("strict")
        digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
        for path in self.paths:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()

    def _check_decoded(self, positions: np.ndarray, ok: torch.Tensor) -> None:
        """Raise if a file at ``positions`` (decoded with flags ``ok``) no longer decodes."""
        if bool(ok.all()):
            return
        bad = [str(self.paths[i]) for i, good in zip(positions, ok.tolist()) if not good]
        raise DataError(
            f"expected the images that decoded when the folder was indexed, received {len(bad)} "
            f"file(s) that cannot be decoded now: {', '.join(bad)} (the folder changed during "
            f"the run; load it again)"
        )


class FileMoments(ImageFiles):
    """Image files reduced to their pixel moments in the worker (what indexing runs).

    ``dataset[i]`` is ``(i, moments, ok)``; see :class:`ImageFiles`.

    Shape:
        ``moments``: ``(C + C*C,)`` int64.
    """

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, bool]:
        index, image, ok = super().__getitem__(index)
        return index, image_moments(image.unsqueeze(0))[0], ok


def index_files(
    paths: list[Path], options: FolderOptions, workers: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every file once, in worker processes, keeping only its pixel moments.

    Shape:
        ``-> (N, C + C*C) int64, (N,) bool`` (False: the file could not be decoded).
    """
    width = (moments_width(options.channels),)
    return collect(FileMoments(paths, options), width, torch.int64, workers)


def stream_splits(
    scan: FolderScan, options: FolderOptions, cache_dir: str | Path, workers: int
) -> tuple[dict[str, StreamedDataset], list[str]]:
    """The folder's splits as streamed datasets of their decodable files (from the cached
    index when the files are unchanged).

    Returns:
        ``(splits by name, paths of the files that cannot be decoded)``.
    """
    path = entry_path(cache_dir, scan, options, "index")
    tensors, undecodable = cached_entry(path, scan, lambda p: index_files(p, options, workers))
    splits = {}
    for name, items in scan.splits.items():
        kept = tensors[f"{name}_ok"].nonzero().flatten()
        paths = np.asarray([str(p) for p, _ in items], dtype=np.str_)[kept.numpy()]
        labels = torch.tensor([label for _, label in items], dtype=torch.int64)[kept]
        moments = tensors[name][kept]
        splits[name] = StreamedDataset(paths, labels, scan.classes, options, moments, workers)
    return splits, undecodable
