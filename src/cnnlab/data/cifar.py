"""Reader for CIFAR-10's binary distribution (``cifar-10-binary.tar.gz``), without unpickling.

The archive holds ``cifar-10-batches-bin/data_batch_{1..5}.bin`` (training),
``test_batch.bin`` and ``batches.meta.txt`` (class names, one per line). Each ``.bin`` file is
a run of 3073-byte records: one label byte, then the 32x32 red plane, green plane and blue
plane, each row-major. Members are read straight out of the archive (nothing is extracted).
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.dataset import DatasetSplits, ImageDataset
from cnnlab.errors import DataError

ARCHIVE = "cifar-10-binary.tar.gz"
MEMBER_DIR = "cifar-10-batches-bin"
TRAIN_MEMBERS = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBER = "test_batch.bin"
META_MEMBER = "batches.meta.txt"
SIDE = 32
RECORD = 1 + 3 * SIDE * SIDE  # label byte + R, G, B planes


def parse_records(raw: bytes, num_classes: int, origin: str) -> tuple[np.ndarray, np.ndarray]:
    """Split CIFAR-10 binary records into images and labels.

    Shape:
        ``bytes -> (N, 3, 32, 32) uint8, (N,) int64``.

    Raises:
        DataError: a length that is not a whole number of records, or a label out of range.
    """
    if len(raw) == 0 or len(raw) % RECORD:
        raise DataError(
            f"expected a whole number of {RECORD}-byte CIFAR-10 records, received "
            f"{len(raw)} bytes in {origin} (truncated or corrupt)"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)  # N x 3073
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= num_classes:
        raise DataError(
            f"expected labels below {num_classes}, received {int(labels.max())} in {origin}"
        )
    images = records[:, 1:].reshape(-1, 3, SIDE, SIDE)  # N x 3 x 32 x 32 (planes R, G, B)
    return images, labels


def load_cifar10(folder: Path, classes: tuple[str, ...]) -> DatasetSplits:
    """Load the cached archive into uint8 tensors (50,000 train, 10,000 test).

    Raises:
        DataError: an unreadable archive, a missing member, or class names in
            ``batches.meta.txt`` that differ from ``classes``.
    """
    path = folder / ARCHIVE
    try:
        with tarfile.open(path, "r:gz") as archive:
            meta = _member(archive, META_MEMBER, path).decode("ascii", "replace").split()
            if meta and tuple(meta) != classes:
                raise DataError(
                    f"expected CIFAR-10 classes {list(classes)}, received {meta} in {path}"
                )
            train = [_member(archive, name, path) for name in TRAIN_MEMBERS]
            test = _member(archive, TEST_MEMBER, path)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read the CIFAR-10 archive {path}: {exc}") from None

    def split(raw: bytes, origin: str) -> ImageDataset:
        images, labels = parse_records(raw, len(classes), origin)
        return ImageDataset(torch.from_numpy(images.copy()), torch.from_numpy(labels), classes)

    return DatasetSplits(
        "cifar10",
        train=split(b"".join(train), f"{path} ({MEMBER_DIR}/data_batch_*.bin)"),
        test=split(test, f"{path} ({MEMBER_DIR}/{TEST_MEMBER})"),
    )


def _member(archive: tarfile.TarFile, name: str, path: Path) -> bytes:
    try:
        handle = archive.extractfile(f"{MEMBER_DIR}/{name}")
    except KeyError:
        handle = None
    if handle is None:
        raise DataError(
            f"expected {MEMBER_DIR}/{name} in the CIFAR-10 binary archive, received {path} "
            f"without it"
        )
    return handle.read()
