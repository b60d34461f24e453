"""Fashion-MNIST and CIFAR-10: parsing synthetic archives in the exact published formats,
checksums, installing from a local file (``--from``) and placing files by hand."""

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cifar_helpers import OFFLINE, cifar_archive, offline_cifar10, records
from cifar_helpers import md5 as _md5
from cnnlab.cli import main
from cnnlab.data import cifar, datasets
from cnnlab.data.datasets import fetch_dataset, load_dataset
from cnnlab.data.sources import RemoteFile
from cnnlab.errors import DataError

SUBSET = Path(__file__).parent.parent / "fixtures" / "mnist-subset"


def _register(monkeypatch, info: datasets.DatasetInfo) -> None:
    monkeypatch.setitem(datasets.DATASETS, info.name, info)


@pytest.fixture
def fake_cifar(monkeypatch, tmp_path):
    """CIFAR-10's catalogue entry, checksummed for the synthetic archive, mirrors offline."""
    data, truth = cifar_archive()
    path = tmp_path / "downloads" / cifar.ARCHIVE
    path.parent.mkdir()
    path.write_bytes(data)
    _register(monkeypatch, offline_cifar10(data))
    return path, truth


def test_cifar_records_are_label_then_rgb_planes():
    raw, images, labels = records(5, seed=0)
    parsed_images, parsed_labels = cifar.parse_records(raw, 10, "test")
    assert np.array_equal(parsed_images, images) and np.array_equal(parsed_labels, labels)
    record = raw[: cifar.RECORD]
    assert parsed_images[0, 1, 0, 0] == record[1 + 1024]  # green plane starts at byte 1025
    assert parsed_images[0, 2, 31, 31] == record[-1]


def test_cifar_install_from_file_and_load(fake_cifar, tmp_path):
    path, truth = fake_cifar
    cache = tmp_path / "cache"
    assert fetch_dataset("cifar10", cache, source=path) == cache / "cifar10"
    splits = load_dataset("cifar10", cache)
    assert splits.classes[0] == "airplane" and len(splits.classes) == 10
    assert splits.train.images.shape == (20, 3, 32, 32) and splits.test.images.shape == (
        3,
        3,
        32,
        32,
    )
    train_images = np.concatenate([i for i, _ in truth["train"]])
    assert np.array_equal(splits.train.images.numpy(), train_images)
    assert torch.equal(splits.test.labels, torch.from_numpy(truth["test"][1].astype(np.int64)))


def test_cifar_install_from_folder_holding_the_archive(fake_cifar, tmp_path):
    path, _ = fake_cifar
    fetch_dataset("cifar10", tmp_path / "cache", source=path.parent)
    assert len(load_dataset("cifar10", tmp_path / "cache").train) == 20


def test_unreachable_mirror_says_how_to_place_the_archive(fake_cifar, tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("cifar10", tmp_path / "cache")
    message = str(info.value)
    assert "cnnlab data fetch cifar10 --from FILE" in message
    assert str(tmp_path / "cache" / "cifar10") in message and "\n" not in message


def test_archive_placed_by_hand_is_verified_once(fake_cifar, tmp_path):
    path, _ = fake_cifar
    folder = tmp_path / "cache" / "cifar10"
    folder.mkdir(parents=True)
    (folder / cifar.ARCHIVE).write_bytes(path.read_bytes())
    assert len(load_dataset("cifar10", tmp_path / "cache").test) == 3
    assert (folder / "verified.json").is_file()


def test_wrong_archive_is_a_checksum_error(tmp_path, monkeypatch):
    data, _ = cifar_archive()
    path = tmp_path / cifar.ARCHIVE
    path.write_bytes(data)
    _register(monkeypatch, dataclasses.replace(datasets.CIFAR10, sources=OFFLINE))  # real MD5
    with pytest.raises(DataError) as info:
        fetch_dataset("cifar10", tmp_path / "cache", source=path)
    message = str(info.value)
    assert "checksum mismatch for cifar-10-binary.tar.gz" in message
    assert "c32a1d4ab5d03f1284b67883e8d87530" in message and "170052171 bytes" in message
    assert not (tmp_path / "cache" / "cifar10" / cifar.ARCHIVE).exists()  # nothing cached
    # placed by hand: hashed and rejected the same way
    folder = tmp_path / "cache" / "cifar10"
    folder.mkdir(parents=True)
    (folder / cifar.ARCHIVE).write_bytes(data)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("cifar10", tmp_path / "cache")


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({cifar.META_MEMBER: b"a b"}, "classes"),
        ({cifar.META_MEMBER: b""}, "data_batch_1.bin"),
        (
            {**{n: b"\x00" * cifar.RECORD for n in cifar.TRAIN_MEMBERS}, cifar.TEST_MEMBER: b"x"},
            "truncated or corrupt",
        ),
        (
            {n: b"\x0b" + b"\x00" * 3072 for n in (*cifar.TRAIN_MEMBERS, cifar.TEST_MEMBER)},
            "labels below 10",
        ),
    ],
)
def test_bad_archive_contents(monkeypatch, tmp_path, members, fragment):
    meta = "\n".join(datasets.CIFAR10.classes).encode()
    data, _ = cifar_archive({cifar.META_MEMBER: meta, **members})
    _register(
        monkeypatch,
        dataclasses.replace(
            datasets.CIFAR10, files=(RemoteFile(cifar.ARCHIVE, md5=_md5(data)),), sources=()
        ),
    )
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / cifar.ARCHIVE).write_bytes(data)
    with pytest.raises(DataError, match=fragment) as info:
        load_dataset("cifar10", tmp_path)
    assert "\n" not in str(info.value)


def test_not_a_tar_gz(monkeypatch, tmp_path):
    data = b"this is not an archive"
    _register(
        monkeypatch,
        dataclasses.replace(
            datasets.CIFAR10, files=(RemoteFile(cifar.ARCHIVE, md5=_md5(data)),), sources=()
        ),
    )
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / cifar.ARCHIVE).write_bytes(data)
    with pytest.raises(DataError, match="cannot read the CIFAR-10 archive"):
        load_dataset("cifar10", tmp_path)


# ---- Fashion-MNIST ------------------------------------------------------------------------
def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.fixture
def fashion_files(tmp_path, monkeypatch):
    """The four Fashion-MNIST files, gzip-compressed as published, in a downloads folder."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(12) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
        "t10k-labels-idx1-ubyte": np.arange(5),
    }
    folder = tmp_path / "downloads"
    folder.mkdir()
    files = []
    for name, array in arrays.items():
        data = gzip.compress(_idx(array))
        (folder / f"{name}.gz").write_bytes(data)
        files.append(RemoteFile(f"{name}.gz", md5=_md5(data)))
    info = dataclasses.replace(datasets.FASHION_MNIST, files=tuple(files), sources=OFFLINE)
    _register(monkeypatch, info)
    return folder, arrays


def test_fashion_mnist_from_folder(fashion_files, tmp_path):
    folder, arrays = fashion_files
    fetch_dataset("fashion-mnist", tmp_path / "cache", source=folder)
    splits = load_dataset("fashion-mnist", tmp_path / "cache")
    assert splits.classes[0] == "T-shirt/top" and splits.classes[9] == "Ankle boot"
    assert splits.train.images.shape == (12, 1, 28, 28)
    assert np.array_equal(splits.test.images[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    cached = sorted(p.name for p in (tmp_path / "cache" / "fashion-mnist").iterdir())
    assert "train-images-idx3-ubyte.gz" in cached  # kept compressed, as published


def test_fashion_mnist_offline_error_names_every_file(fashion_files, tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", tmp_path / "cache")
    message = str(info.value)
    assert "--from FOLDER" in message and "t10k-labels-idx1-ubyte.gz" in message


def test_fashion_mnist_missing_file_in_folder(fashion_files, tmp_path):
    folder, _ = fashion_files
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz"):
        fetch_dataset("fashion-mnist", tmp_path / "cache", source=folder)


def test_mnist_from_a_folder_of_gz_files(tmp_path):
    """The subset fixture's files are .gz; the catalogue caches them uncompressed."""
    fetch_dataset("mnist-subset", tmp_path, source=SUBSET)
    assert len(load_dataset("mnist-subset", tmp_path).train) == 4000


# ---- CLI ------------------------------------------------------------------------------------
def test_cli_fetch_from_and_list(fake_cifar, tmp_path, capsys):
    path, _ = fake_cifar
    cache = str(tmp_path / "cache")
    assert main(["data", "list", "--cache-dir", cache, "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"mnist", "fashion-mnist", "cifar10"} <= set(rows) and not rows["cifar10"]["cached"]
    assert main(["data", "fetch", "cifar10", "--from", str(path), "--cache-dir", cache]) == 0
    capsys.readouterr()
    assert main(["data", "list", "--cache-dir", cache]) == 0
    assert "cifar10        cached" in capsys.readouterr().out


def test_cli_fetch_errors_are_one_line(fake_cifar, tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert main(["data", "fetch", "cifar10", "--cache-dir", cache]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--from FILE" in err
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"nope")
    assert main(["data", "fetch", "cifar10", "--from", str(bogus), "--cache-dir", cache]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert main(["data", "fetch", "imagenet", "--cache-dir", cache]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err
