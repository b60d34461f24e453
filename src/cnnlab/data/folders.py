"""Image folders as datasets: decoded once (in worker processes), cached as uint8 tensors.

``load_image_folder("pets/", image_size=(150, 150), channels=3)`` scans the folder
(:mod:`cnnlab.data.folder_scan`), decodes every image with :func:`cnnlab.data.images.load_image`
(the conversion ``cnnlab predict`` uses, so training and prediction see identical pixels) and
returns :class:`DatasetSplits`. The decoded tensors are cached in
``CACHE/folders/<folder id>/<key>.safetensors``; the key hashes the file list with every file's
size and modification time plus the options, so adding, removing or editing a file (or changing
``image_size``/``channels``) decodes again, and the stale entry is deleted. Files that are not
images or cannot be decoded are reported together, in one warning (or one error with
``strict``), every time the folder is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch.utils.data import DataLoader, Dataset

from cnnlab.data.dataset import DatasetSplits, ImageDataset, split_validation
from cnnlab.data.folder_scan import FolderScan, scan_folder
from cnnlab.data.images import load_image
from cnnlab.errors import DataError, DataWarning
from cnnlab.fileio import atomic_write_bytes

CACHE_VERSION = 1
TEST_FRACTION = 0.1  # held out as the test split when the folder has no val/ or test/
PARALLEL_FROM = 256  # decode in worker processes from this many files on
MEMORY_SHARE = 0.25  # decoded folders may take up to this share of the machine's RAM


@dataclass(frozen=True)
class FolderOptions:
    """How the images of a folder are converted (stored in the run as ``data_options``).

    Attributes:
        image_size: ``(H, W)`` every image is resized to.
        channels: 1 (grey-scale) or 3 (RGB).
        strict: reject the folder when any file is not a decodable image.
    """

    image_size: tuple[int, int]
    channels: int = 3
    strict: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "image_size": list(self.image_size),
            "channels": self.channels,
            "strict": self.strict,
        }


def first_image_size(root: str | Path) -> tuple[int, int]:
    """``(H, W)`` of the first training image of a folder (the default ``image_size``).

    Raises:
        DataError: see :func:`scan_folder`; or the first image cannot be decoded.
    """
    path = scan_folder(root).splits["train"][0][0]
    try:
        with Image.open(path) as image:
            width, height = ImageOps.exif_transpose(image).size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"expected a PNG, JPEG or BMP image, received {path} that cannot be decoded ({exc}); "
            f"give image_size explicitly"
        ) from None
    return height, width


def load_image_folder(
    root: str | Path,
    options: FolderOptions,
    cache_dir: str | Path,
    workers: int | None = None,
    max_bytes: int | None = None,
) -> DatasetSplits:
    """Load a class-per-folder dataset into memory (from the cache when unchanged).

    Args:
        root: the folder (see :mod:`cnnlab.data.folder_scan` for the layouts).
        options: size, channels, strictness.
        cache_dir: the cnnlab cache; decoded tensors go to ``cache_dir/folders``.
        workers: decoding processes; default ``min(4, cpu count)``.
        max_bytes: the most decoded bytes held in memory; default a quarter of the RAM.

    Returns:
        Splits named by the folder's absolute path. ``val`` is the ``val/`` folder if any;
        ``test`` is ``test/``, else ``val/``, else a fixed 10% of the images (always the same
        files for the same folder).

    Raises:
        DataError: layout errors (see :func:`scan_folder`), no decodable image in a class,
            bad files under ``strict``, or more decoded bytes than ``max_bytes``.
    """
    scan = scan_folder(root)
    root = scan.root.resolve()
    _check_memory(scan, options, max_bytes)
    folder = Path(cache_dir) / "folders" / hashlib.sha256(str(root).encode()).hexdigest()[:16]
    key = _cache_key(scan, options)
    cached = _read_cache(folder / f"{key}.safetensors")
    if cached is None:
        cached = _decode_splits(scan, options, workers)
        _write_cache(folder, key, cached)
    tensors, undecodable = cached
    bad = scan.bad_files + [(Path(p), "cannot be decoded as an image") for p in undecodable]
    if bad and options.strict:
        _reject(root, bad)
    if bad:
        shown = "; ".join(f"{p} ({why})" for p, why in bad)
        warnings.warn(
            f"skipped {len(bad)} file(s) in {root} that are not images or cannot be decoded: "
            f"{shown}",
            DataWarning,
            stacklevel=2,
        )
    splits = {
        name: ImageDataset(tensors[f"{name}_images"], tensors[f"{name}_labels"], scan.classes)
        for name in scan.splits
    }
    for name, split in splits.items():
        present = set(split.labels.unique().tolist())
        missing = [c for i, c in enumerate(scan.classes) if i not in present]
        if name == "train" and missing:
            raise DataError(
                f"expected a decodable image in every class, received none in class(es) "
                f"{missing} of {root}"
            )
    train, val, test = splits["train"], splits.get("val"), splits.get("test")
    if test is None and val is None:
        train, test = split_validation(train, TEST_FRACTION, seed=0)
    return DatasetSplits(str(root), train=train, test=test if test is not None else val, val=val)


def _check_memory(scan: FolderScan, options: FolderOptions, max_bytes: int | None) -> None:
    """Refuse, before decoding anything, a folder whose tensors would not fit in memory."""
    if max_bytes is None:
        max_bytes = int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * MEMORY_SHARE)
    count = sum(len(items) for items in scan.splits.values())
    needed = count * options.channels * options.image_size[0] * options.image_size[1]
    if needed > max_bytes:
        raise DataError(
            f"expected a folder whose decoded images fit in {max_bytes / 2**30:.1f} GiB, "
            f"received {count} images of {options.channels}x{options.image_size[0]}x"
            f"{options.image_size[1]} ({needed / 2**30:.1f} GiB) in {scan.root}; choose a "
            f"smaller --image-size (streaming large folders is not supported yet)"
        )


def _reject(root: Path, bad: list[tuple[Path, str]]) -> None:
    shown = "; ".join(f"{p} ({why})" for p, why in bad)
    raise DataError(
        f"expected only PNG, JPEG or BMP images in {root} (--strict), received {len(bad)} bad "
        f"file(s): {shown}"
    )


# ---- decoding -------------------------------------------------------------------------------
class ImageFiles(Dataset):
    """Image files decoded one by one (what DataLoader workers run).

    ``dataset[i]`` is ``(i, image, ok)``; an undecodable file gives a zero image and
    ``ok=False`` instead of raising, so one bad file never kills a worker.

    Shape:
        ``image``: ``(channels, H, W)`` uint8.
    """

    def __init__(self, paths: list[Path], options: FolderOptions) -> None:
        self.paths = paths
        self.options = options

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, bool]:
        size, channels = self.options.image_size, self.options.channels
        try:
            return index, load_image(self.paths[index], channels, size), True
        except DataError:
            return index, torch.zeros(channels, *size, dtype=torch.uint8), False


def decode_images(
    paths: list[Path], options: FolderOptions, workers: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode files in parallel worker processes (in-process for few files).

    Shape:
        ``-> (N, C, H, W) uint8, (N,) bool`` (False: the file could not be decoded).
    """
    images = torch.empty(len(paths), options.channels, *options.image_size, dtype=torch.uint8)
    ok = torch.zeros(len(paths), dtype=torch.bool)
    if workers is None:
        workers = min(4, os.cpu_count() or 1)
    loader = DataLoader(
        ImageFiles(paths, options),
        batch_size=64,
        num_workers=workers if len(paths) >= PARALLEL_FROM else 0,
    )
    for index, batch, good in loader:  # default collate stacks each field
        images[index] = batch
        ok[index] = good
    return images, ok


def _decode_splits(
    scan: FolderScan, options: FolderOptions, workers: int | None
) -> tuple[dict[str, torch.Tensor], list[str]]:
    tensors: dict[str, torch.Tensor] = {}
    undecodable: list[str] = []
    for name, items in scan.splits.items():
        paths = [p for p, _ in items]
        images, ok = decode_images(paths, options, workers)
        labels = torch.tensor([label for _, label in items], dtype=torch.int64)
        tensors[f"{name}_images"] = images[ok].contiguous()
        tensors[f"{name}_labels"] = labels[ok].contiguous()
        undecodable += [str(p) for p, good in zip(paths, ok.tolist()) if not good]
    return tensors, undecodable


# ---- cache ----------------------------------------------------------------------------------
def _cache_key(scan: FolderScan, options: FolderOptions) -> str:
    files = []
    for path in scan.all_files():
        stat = path.stat()
        files.append([str(path.relative_to(scan.root)), stat.st_size, stat.st_mtime_ns])
    document = {"version": CACHE_VERSION, "options": options.to_dict(), "files": files}
    document["options"].pop("strict")  # strictness does not change the decoded pixels
    return hashlib.sha256(json.dumps(document).encode()).hexdigest()[:32]


def _read_cache(path: Path) -> tuple[dict[str, torch.Tensor], list[str]] | None:
    if not path.is_file():
        return None
    try:
        raw = path.read_bytes()
        tensors = load_tensors(raw)
        metadata = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])["__metadata__"]
        return tensors, json.loads(metadata["undecodable"])
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError):
        return None  # unreadable cache entry: decode again (it is rewritten atomically)


def _write_cache(folder: Path, key: str, cached: tuple[dict[str, torch.Tensor], list[str]]) -> None:
    tensors, undecodable = cached
    data = save_tensors(tensors, metadata={"undecodable": json.dumps(undecodable)})
    atomic_write_bytes(folder / f"{key}.safetensors", data)
    for stale in folder.glob("*.safetensors"):
        if stale.name != f"{key}.safetensors":
            stale.unlink(missing_ok=True)
