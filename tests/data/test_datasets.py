import pytest
import torch

from cnnlab.data.dataset import split_validation
from cnnlab.data.datasets import load_dataset
from cnnlab.errors import ConfigError, DataError


def test_subset_loads_as_uint8_nchw(subset):
    assert subset.train.images.shape == (4000, 1, 28, 28)
    assert subset.train.images.dtype == torch.uint8
    assert subset.test.images.shape == (1000, 1, 28, 28)
    assert subset.train.labels.dtype == torch.int64
    assert subset.classes == tuple("0123456789")
    # the first training digit of MNIST is a 5, the first test digit a 7
    assert subset.train.labels[0].item() == 5 and subset.test.labels[0].item() == 7
    assert subset.train.images.max() == 255 and subset.train.images.min() == 0


def test_cached_load_reads_the_cache_only(cache_dir):
    """A cached dataset loads without fetching (the subset has no sources to fetch from) and,
    once verified, without writing to the cache; its speed is measured in benchmarks/, not
    here. (The first load of a fresh cache records ``verified.json``; whether another test in this
    worker loaded first depends on the order, so this test loads once itself.)"""
    load_dataset("mnist-subset", cache_dir)
    assert (cache_dir / "mnist-subset" / "verified.json").is_file()
    files = sorted((cache_dir / "mnist-subset").iterdir())
    before = [(f.name, f.stat().st_mtime_ns) for f in files]
    first, second = load_dataset("mnist-subset", cache_dir), load_dataset("mnist-subset", cache_dir)
    assert torch.equal(first.train.images, second.train.images)
    assert torch.equal(first.test.labels, second.test.labels)
    after = sorted((f.name, f.stat().st_mtime_ns) for f in (cache_dir / "mnist-subset").iterdir())
    assert after == before


def test_unknown_dataset():
    with pytest.raises(DataError, match=r"unknown dataset 'mnsit'; expected one of: .*mnist"):
        load_dataset("mnsit")


def test_truncated_cached_idx_is_reported(tmp_path, cache_dir):
    import shutil

    shutil.copytree(cache_dir / "mnist-subset", tmp_path / "mnist-subset")
    path = tmp_path / "mnist-subset" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="checksum mismatch for t10k-labels-idx1-ubyte"):
        load_dataset("mnist-subset", tmp_path)


def test_validation_split_is_seeded_and_disjoint(subset):
    train, val = split_validation(subset.train, 0.1, seed=3)
    _, again_val = split_validation(subset.train, 0.1, seed=3)
    assert len(val) == 400 and len(train) == 3600
    assert torch.equal(val.images, again_val.images)
    _, other_val = split_validation(subset.train, 0.1, seed=4)
    assert not torch.equal(val.labels, other_val.labels)
    with pytest.raises(ConfigError, match=r"val_split=1\.5"):
        split_validation(subset.train, 1.5, seed=0)
