"""Streamed image folders: the in-memory pixels, decoded on demand by worker processes, after
one indexing pass that finds every bad file; chosen automatically above the memory budget."""

import os
import shutil

import pytest
import torch

from cnnlab.data import image_files, stream
from cnnlab.data.augment import fit_pca, pca_of
from cnnlab.data.datasets import load_dataset
from cnnlab.data.preprocess import channel_stats
from cnnlab.errors import ConfigError, DataError, DataWarning

from .conftest import noise_png

FOLDER = {"image_size": (28, 28), "channels": 3}


def _copy(folder, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def test_streamed_splits_hold_the_in_memory_pixels_labels_and_statistics(digit_folder, tmp_path):
    memory = load_dataset(str(digit_folder), tmp_path / "a", stream=False, **FOLDER)
    streamed = load_dataset(str(digit_folder), tmp_path / "b", stream=True, workers=2, **FOLDER)
    assert not memory.train.streamed and streamed.train.streamed
    for name in ("train", "test"):
        held, lazy = getattr(memory, name), getattr(streamed, name)
        assert len(lazy) == len(held) and lazy.image_shape == held.image_shape == (3, 28, 28)
        assert torch.equal(lazy.labels, held.labels) and lazy.classes == held.classes
        order = torch.randperm(len(held), generator=torch.Generator().manual_seed(1))
        batches = list(lazy.batches(16, order))  # in worker processes, in the given order
        assert [len(b) for b in batches][:-1] == [16] * (len(batches) - 1)
        assert torch.equal(torch.cat(batches), held.images[order])
        assert torch.equal(torch.cat(list(lazy.batches(7))), held.images)  # stored order
        assert torch.equal(lazy.take(order[:5]), held.images[order[:5]])
    # normalisation and PCA: bitwise the same numbers, and right (against float64 directly)
    moments = streamed.train.pixel_moments()
    assert moments == memory.train.pixel_moments()
    mean, std = moments.mean_std()
    assert (mean, std) == channel_stats(memory.train.images)
    pixels = memory.train.images.double().transpose(0, 1).reshape(3, -1) / 255
    assert torch.allclose(torch.tensor(mean, dtype=torch.float64), pixels.mean(1), atol=1e-12)
    assert torch.allclose(torch.tensor(std, dtype=torch.float64), pixels.std(1), atol=1e-12)
    for a, b in zip(pca_of(moments), fit_pca(memory.train.images)):
        assert torch.equal(a, b)
    assert torch.allclose(moments.covariance(), torch.cov(pixels), atol=1e-12)
    # class selection and subsets stay streamed
    kept = streamed.train.subset(torch.tensor([3, 1]))
    assert kept.streamed and torch.equal(kept.take(torch.arange(2)), memory.train.images[[3, 1]])


def test_streaming_is_chosen_when_the_images_exceed_the_memory_budget(digit_folder, tmp_path):
    needed = 90 * 3 * 28 * 28
    fits = load_dataset(str(digit_folder), tmp_path / "a", max_bytes=needed, **FOLDER)
    assert not fits.train.streamed
    too_big = load_dataset(str(digit_folder), tmp_path / "b", max_bytes=needed - 1, **FOLDER)
    assert too_big.train.streamed and too_big.test.streamed
    # nothing decoded into the cache: only the index (moments and decodable flags)
    (entry,) = (tmp_path / "b" / "folders").glob("*/*.safetensors")
    assert entry.name.endswith(".index.safetensors")
    with pytest.raises(DataError, match="stream=False") as info:
        load_dataset(
            str(digit_folder), tmp_path / "c", max_bytes=needed - 1, stream=False, **FOLDER
        )
    assert "\n" not in str(info.value)


def test_worker_processes_decode_the_streamed_batches(digit_folder, tmp_path, monkeypatch):
    """Each decode leaves a marker named by its process id: the batches come from workers."""
    markers = tmp_path / "markers"
    markers.mkdir()
    real = image_files.load_image

    def marking_load(path, *args, **kwargs):
        (markers / str(os.getpid())).touch()
        return real(path, *args, **kwargs)

    splits = load_dataset(str(digit_folder), tmp_path / "c", stream=True, workers=2, **FOLDER)
    monkeypatch.setattr(image_files, "load_image", marking_load)  # workers fork after this
    images = torch.cat(list(splits.train.batches(8)))
    assert len(images) == len(splits.train)
    pids = {int(p.name) for p in markers.iterdir()}
    assert pids and os.getpid() not in pids and len(pids) <= 2


def test_the_index_pass_in_worker_processes_matches_the_one_in_process(digit_folder, monkeypatch):
    paths = [*sorted(digit_folder.rglob("*.*"))[:40], digit_folder / "missing.png"]
    options = image_files.FolderOptions((28, 28), 3)
    serial = stream.index_files(paths, options, workers=0)
    monkeypatch.setattr(image_files, "PARALLEL_FROM", 1)
    parallel = stream.index_files(paths, options, workers=2)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    moments, ok = parallel
    assert ok[:-1].all() and not ok[-1] and moments.shape == (41, 3 + 9)
    images, _ = image_files.decode_images(paths[:-1], options, workers=0)
    assert torch.equal(moments[:-1].sum(0), stream.image_moments(images).sum(0))


def test_the_index_pass_reports_every_bad_file_and_the_splits_never_hold_one(
    digit_folder, tmp_path, monkeypatch
):
    folder = _copy(digit_folder, tmp_path)
    bad = {
        folder / "0" / "notes.txt": b"not an image",
        folder / "1" / "broken.png": b"\x89PNG\r\n\x1a\n truncated",
        folder / "7" / "empty.jpg": b"",
    }
    for path, data in bad.items():
        path.write_bytes(data)
    cache = tmp_path / "cache"
    with pytest.warns(DataWarning) as caught:
        splits = load_dataset(str(folder), cache, stream=True, **FOLDER)
    message = str(caught[0].message)
    assert "skipped 3 file(s)" in message and "\n" not in message
    assert all(str(path) in message for path in bad)
    streamed = {str(p) for split in (splits.train, splits.test) for p in split.paths}
    assert len(streamed) == 90 and not streamed & {str(p) for p in bad}
    # the index is cached: a second load decodes nothing and reports the same files
    calls = []
    real = stream.index_files
    monkeypatch.setattr(stream, "index_files", lambda *a, **k: calls.append(1) or real(*a, **k))
    with pytest.warns(DataWarning, match="broken.png"):
        load_dataset(str(folder), cache, stream=True, **FOLDER)
    assert calls == []
    with pytest.raises(DataError, match="--strict") as info:
        load_dataset(str(folder), cache, stream=True, strict=True, **FOLDER)
    assert all(str(path) in str(info.value) for path in bad) and "\n" not in str(info.value)
    assert calls == []
    # a changed file: indexed again, the stale index removed
    noise_png(folder / "1" / "extra.png", seed=3)
    with pytest.warns(DataWarning):
        grown = load_dataset(str(folder), cache, stream=True, **FOLDER)
    assert len(calls) == 1 and len(grown.train) + len(grown.test) == 91
    assert len(list((cache / "folders").glob("*/*.safetensors"))) == 1


def test_a_file_broken_after_indexing_is_one_clear_error(digit_folder, tmp_path):
    folder = _copy(digit_folder, tmp_path)
    splits = load_dataset(str(folder), tmp_path / "cache", stream=True, workers=0, **FOLDER)
    victim = splits.train.paths[2]
    with open(victim, "wb") as file:
        file.write(b"garbage")
    with pytest.raises(DataError, match="cannot be decoded now") as info:
        list(splits.train.batches(4))
    assert str(victim) in str(info.value) and "\n" not in str(info.value)


def test_stream_options_are_checked(digit_folder, tmp_path, cache_dir):
    with pytest.raises(ConfigError, match="only with an image folder"):
        load_dataset("mnist-subset", cache_dir, stream=True)
    with pytest.raises(ConfigError, match="workers"):
        load_dataset(str(digit_folder), tmp_path, workers=-1, **FOLDER)
