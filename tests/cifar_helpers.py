"""Synthetic CIFAR-10 archives in the exact published binary format (CIFAR-10 itself cannot be
downloaded here), and registering one as the ``cifar10`` catalogue entry for a test."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile

import numpy as np

from cnnlab.data import cifar, datasets
from cnnlab.data.sources import MirrorSource, RemoteFile

OFFLINE = (MirrorSource("file:///nonexistent/cnnlab-mirror", suffix=""),)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def records(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``n`` random records (label byte, then the R, G and B planes), their images and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    raw = b"".join(bytes([lab]) + img.tobytes() for lab, img in zip(labels, images))
    return raw, images, labels


def cifar_archive(
    members: dict[str, bytes] | None = None, per_batch: int = 4, test: int = 3
) -> tuple[bytes, dict]:
    """A small cifar-10-binary.tar.gz: 5 train batches of ``per_batch`` records, a test batch
    of ``test`` (or the given ``members``), and the truth it holds."""
    truth = {"train": [], "test": None}
    if members is None:
        members = {}
        for i, name in enumerate(cifar.TRAIN_MEMBERS):
            raw, images, labels = records(per_batch, seed=i)
            members[name] = raw
            truth["train"].append((images, labels))
        raw, images, labels = records(test, seed=99)
        members[cifar.TEST_MEMBER] = raw
        truth["test"] = (images, labels)
        members[cifar.META_MEMBER] = ("\n".join(datasets.CIFAR10.classes) + "\n\n").encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{cifar.MEMBER_DIR}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), truth


def offline_cifar10(data: bytes) -> datasets.DatasetInfo:
    """CIFAR-10's catalogue entry checksummed for the archive ``data``, mirrors offline (put it
    in ``datasets.DATASETS`` with ``monkeypatch.setitem``)."""
    return dataclasses.replace(
        datasets.CIFAR10,
        files=(RemoteFile(cifar.ARCHIVE, size=len(data), md5=md5(data)),),
        sources=OFFLINE,
    )
