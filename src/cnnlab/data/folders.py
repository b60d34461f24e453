"""Image folders as datasets: decoded once into memory, or streamed when too large for it.

``load_image_folder("pets/", FolderOptions((150, 150), channels=3), cache)`` scans the folder
(:mod:`cnnlab.data.folder_scan`) and returns :class:`DatasetSplits`. Every image is converted by
:class:`cnnlab.data.image_files.ImageFiles` (the conversion ``cnnlab predict`` uses, so training
and prediction see identical pixels), in worker processes.

A folder whose decoded images fit the memory budget (default a quarter of the RAM) is decoded
once into uint8 tensors; a larger one (or any, with ``stream=True``) is streamed: indexed in one
pass, then decoded batch by batch during training (:mod:`cnnlab.data.stream`). Both are cached
(:mod:`cnnlab.data.folder_cache`) and rebuilt when a file changes. Files that are not images or
cannot be decoded are reported together, in one warning (or one error with ``strict``), every
time the folder is loaded; either way the splits hold only decodable images.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from cnnlab.data.dataset import DatasetSplits, ImageDataset, ImageSplit, split_validation
from cnnlab.data.folder_cache import cached_entry, entry_path
from cnnlab.data.folder_scan import FolderScan, scan_folder
from cnnlab.data.image_files import FolderOptions, check_workers, decode_images
from cnnlab.data.images import image_size
from cnnlab.data.stream import stream_splits
from cnnlab.errors import DataError, DataWarning, shown_path

TEST_FRACTION = 0.1  # held out as the test split when the folder has no val/ or test/
MEMORY_SHARE = 0.25  # decoded folders may take up to this share of the machine's RAM


def first_image_size(root: str | Path) -> tuple[int, int]:
    """``(H, W)`` of the first training image of a folder (the default ``image_size``).

    Raises:
        DataError: see :func:`scan_folder`; or the first image cannot be decoded.
    """
    path = scan_folder(root).splits["train"][0][0]
    try:
        return image_size(path)
    except DataError as exc:
        raise DataError(f"{exc}; give image_size explicitly") from None


def load_image_folder(
    root: str | Path,
    options: FolderOptions,
    cache_dir: str | Path,
    workers: int | None = None,
    max_bytes: int | None = None,
    stream: bool | None = None,
) -> DatasetSplits:
    """Load a class-per-folder dataset, in memory or streamed (from the cache when unchanged).

    Args:
        root: the folder (see :mod:`cnnlab.data.folder_scan` for the layouts).
        options: size, channels, strictness.
        cache_dir: the cnnlab cache; decoded tensors and stream indexes go to
            ``cache_dir/folders``.
        workers: decoding processes; default ``min(4, cpu count)``; 0 decodes in this process.
        max_bytes: the most decoded bytes held in memory; default a quarter of the RAM.
        stream: True streams, False holds the images in memory (an error when they would
            exceed ``max_bytes``); None (default) streams only when they would.

    Returns:
        Splits named by the folder's absolute path, of :class:`ImageDataset` or
        :class:`cnnlab.data.stream.StreamedDataset`. ``val`` is the ``val/`` folder if any;
        ``test`` is ``test/``, else ``val/``, else a fixed 10% of the images (always the same
        files for the same folder).

    Raises:
        DataError: layout errors (see :func:`scan_folder`), no decodable image in a class,
            bad files under ``strict``, or ``stream=False`` with more decoded bytes than
            ``max_bytes``.
        ConfigError: ``workers`` is not a whole number >= 0.
    """
    workers = check_workers(workers)
    scan = scan_folder(root)
    root = scan.root.resolve()
    if _streams(scan, options, max_bytes, stream):
        splits, undecodable = stream_splits(scan, options, cache_dir, workers)
    else:
        splits, undecodable = _memory_splits(scan, options, cache_dir, workers)
    bad = scan.bad_files + [(Path(p), "cannot be decoded as an image") for p in undecodable]
    if bad and options.strict:
        _reject(root, bad)
    if bad:
        shown = "; ".join(f"{shown_path(p)} ({why})" for p, why in bad)
        warnings.warn(
            f"skipped {len(bad)} file(s) in {root} that are not images or cannot be decoded: "
            f"{shown}",
            DataWarning,
            stacklevel=2,
        )
    present = set(splits["train"].labels.unique().tolist())
    missing = [c for i, c in enumerate(scan.classes) if i not in present]
    if missing:
        raise DataError(
            f"expected a decodable image in every class, received none in class(es) "
            f"{missing} of {root}"
        )
    train, val, test = splits["train"], splits.get("val"), splits.get("test")
    if test is None and val is None:
        train, test = split_validation(train, TEST_FRACTION, seed=0)
    return DatasetSplits(str(root), train=train, test=test if test is not None else val, val=val)


def _streams(
    scan: FolderScan, options: FolderOptions, max_bytes: int | None, stream: bool | None
) -> bool:
    """Whether to stream: as asked, else when the decoded images would exceed the budget.

    Raises:
        DataError: ``stream=False`` and the images would not fit.
    """
    if stream:
        return True
    if max_bytes is None:
        max_bytes = int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * MEMORY_SHARE)
    count = sum(len(items) for items in scan.splits.values())
    c, h, w = options.image_shape
    needed = count * c * h * w
    if needed <= max_bytes:
        return False
    if stream is None:
        return True
    raise DataError(
        f"expected a folder whose decoded images fit in {max_bytes / 2**30:.1f} GiB to hold it "
        f"in memory (stream=False), received {count} images of {c}x{h}x{w} "
        f"({needed / 2**30:.1f} GiB) in {scan.root}; let it stream or choose a smaller "
        f"--image-size"
    )


def _reject(root: Path, bad: list[tuple[Path, str]]) -> None:
    shown = "; ".join(f"{shown_path(p)} ({why})" for p, why in bad)
    raise DataError(
        f"expected only PNG, JPEG or BMP images in {root} (--strict), received {len(bad)} bad "
        f"file(s): {shown}"
    )


def _memory_splits(
    scan: FolderScan, options: FolderOptions, cache_dir: str | Path, workers: int
) -> tuple[dict[str, ImageSplit], list[str]]:
    """The folder's splits decoded into memory (from the cache when the files are unchanged).

    Returns:
        ``(splits by name, paths of the files that cannot be decoded)``.
    """
    path = entry_path(cache_dir, scan, options, "")
    tensors, undecodable = cached_entry(path, scan, lambda p: decode_images(p, options, workers))
    splits: dict[str, ImageSplit] = {}
    for name, items in scan.splits.items():
        kept = tensors[f"{name}_ok"].nonzero().flatten()
        labels = torch.tensor([label for _, label in items], dtype=torch.int64)[kept]
        splits[name] = ImageDataset(tensors[name][kept].contiguous(), labels, scan.classes)
    return splits, undecodable
