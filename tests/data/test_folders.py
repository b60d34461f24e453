"""Image folders: layouts, conversion of real MNIST digits in any format, cache, bad files."""

import os
import shutil
import warnings

import pytest
import torch

from cnnlab.data import folders, image_files
from cnnlab.data.datasets import load_dataset
from cnnlab.errors import DataError, DataWarning

from .conftest import DIGITS, noise_png


def _copy(folder, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def test_flat_folder_classes_labels_and_pixels(digit_folder, subset, tmp_path):
    splits = load_dataset(str(digit_folder), tmp_path, image_size=(28, 28), channels=1)
    assert splits.classes == DIGITS
    assert splits.name == str(digit_folder.resolve())
    total = len(splits.train) + len(splits.test)
    assert total == 90 and len(splits.test) == 9  # fixed 10% held out as the test split
    assert splits.val is None
    assert splits.train.images.shape[1:] == (1, 28, 28)
    # every decoded digit is one of the real MNIST digits of its class, whatever its file
    # format or image mode: PNG (grey, RGBA, palette) and BMP exactly, JPEG closely
    exact = 0
    for image, label in zip(splits.train.images, splits.train.labels):
        real = subset.train.images[subset.train.labels == int(DIGITS[label])][:30]
        distance = (real.float() - image.float()).abs().mean(dim=(1, 2, 3)).min()
        assert distance <= 6
        exact += int(distance == 0)
    assert exact >= len(splits.train) * 0.7  # 4 of the 5 formats are lossless
    assert sorted(set(splits.train.labels.tolist())) == [0, 1, 2]


def test_same_folder_same_test_split(digit_folder, tmp_path):
    a = load_dataset(str(digit_folder), tmp_path / "a", image_size=(28, 28), channels=1)
    b = load_dataset(str(digit_folder), tmp_path / "b", image_size=(28, 28), channels=1)
    assert torch.equal(a.test.images, b.test.images)


def test_resize_and_rgb(digit_folder, tmp_path):
    splits = load_dataset(str(digit_folder), tmp_path, image_size=(32, 40), channels=3)
    assert splits.train.images.shape[1:] == (3, 32, 40)
    # grey digits stay grey in RGB
    image = splits.train.images[0].int()
    assert (image[0] - image[1]).abs().max() <= 2


def test_default_image_size_is_the_first_image(digit_folder, tmp_path):
    assert load_dataset(str(digit_folder), tmp_path).train.image_shape == (3, 28, 28)


def test_split_layout(split_folder, tmp_path):
    splits = load_dataset(str(split_folder), tmp_path, image_size=(28, 28), channels=1)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (72, 18, 18)
    assert not torch.equal(splits.val.images, splits.test.images)


def test_validation_folder_name_and_test_defaults_to_val(split_folder, tmp_path):
    shutil.rmtree(split_folder / "test")
    (split_folder / "val").rename(split_folder / "validation")
    splits = load_dataset(str(split_folder), tmp_path, image_size=(28, 28), channels=1)
    assert len(splits.val) == 18 and splits.test is splits.val


def test_cache_hit_skips_decoding_and_changes_invalidate(digit_folder, tmp_path, monkeypatch):
    folder = _copy(digit_folder, tmp_path)
    cache = tmp_path / "cache"
    first = load_dataset(str(folder), cache, image_size=(28, 28), channels=1)
    entries = list((cache / "folders").glob("*/*.safetensors"))
    assert len(entries) == 1

    calls = []
    real = folders.decode_images
    monkeypatch.setattr(folders, "decode_images", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_dataset(str(folder), cache, image_size=(28, 28), channels=1)
    assert calls == [] and torch.equal(first.train.images, again.train.images)

    # other options: decoded again
    load_dataset(str(folder), cache, image_size=(20, 20), channels=1)
    assert len(calls) == 1
    # a file changes (same size, new content and mtime): decoded again, old entry removed
    victim = sorted((folder / "7").glob("*.png"))[0]
    noise_png(victim)
    os.utime(victim, ns=(1, 1))
    changed = load_dataset(str(folder), cache, image_size=(28, 28), channels=1)
    assert len(calls) == 2
    assert not torch.equal(
        torch.cat([first.train.images, first.test.images]).sum(),
        torch.cat([changed.train.images, changed.test.images]).sum(),
    )
    assert len(list((cache / "folders").glob("*/*.safetensors"))) == 1
    # a file added: decoded again
    noise_png(folder / "1" / "extra.png", seed=3)
    grown = load_dataset(str(folder), cache, image_size=(28, 28), channels=1)
    assert len(grown.train) + len(grown.test) == 91


def test_corrupt_cache_entry_is_rebuilt(digit_folder, tmp_path):
    cache = tmp_path / "cache"
    first = load_dataset(str(digit_folder), cache, image_size=(28, 28), channels=1)
    (entry,) = (cache / "folders").glob("*/*.safetensors")
    entry.write_bytes(b"garbage")
    again = load_dataset(str(digit_folder), cache, image_size=(28, 28), channels=1)
    assert torch.equal(first.train.images, again.train.images)


def test_bad_files_are_all_reported_and_skipped(digit_folder, tmp_path):
    folder = _copy(digit_folder, tmp_path)
    (folder / "0" / "notes.txt").write_text("not an image")
    (folder / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (folder / "7" / "empty.jpg").write_bytes(b"")
    (folder / "7" / ".DS_Store").write_bytes(b"hidden files are ignored")
    with pytest.warns(DataWarning) as caught:
        splits = load_dataset(str(folder), tmp_path / "c", image_size=(28, 28), channels=1)
    message = str(caught[0].message)
    assert "skipped 3 file(s)" in message and "\n" not in message
    for name in ("notes.txt", "broken.png", "empty.jpg"):
        assert name in message
    assert ".DS_Store" not in message
    assert len(splits.train) + len(splits.test) == 90
    # reported again on a cache hit
    with pytest.warns(DataWarning, match="broken.png"):
        load_dataset(str(folder), tmp_path / "c", image_size=(28, 28), channels=1)


def test_strict_rejects_bad_files_in_one_line(digit_folder, tmp_path):
    folder = _copy(digit_folder, tmp_path)
    (folder / "1" / "broken.png").write_bytes(b"not a png")
    (folder / "0" / "readme.md").write_text("x")
    with pytest.raises(DataError) as info:
        load_dataset(str(folder), tmp_path / "c", image_size=(28, 28), channels=1, strict=True)
    message = str(info.value)
    assert "--strict" in message and "broken.png" in message and "readme.md" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda root: (root / "0").mkdir(), "empty class folder"),
        (lambda root: None, "no sub-folders"),
        (lambda root: noise_png(root / "loose.png"), "no sub-folders"),
    ],
)
def test_layout_errors(tmp_path, make, expected):
    root = tmp_path / "data"
    root.mkdir()
    if expected == "empty class folder":
        (root / "1").mkdir()
        noise_png(root / "1" / "a.png")
    make(root)
    with pytest.raises(DataError, match=expected) as info:
        load_dataset(str(root), tmp_path / "c", image_size=(28, 28))
    assert "\n" not in str(info.value)


def test_single_class_and_missing_folder(tmp_path):
    root = tmp_path / "one"
    (root / "cats").mkdir(parents=True)
    noise_png(root / "cats" / "a.png")
    with pytest.raises(DataError, match="at least 2 classes"):
        load_dataset(str(root), tmp_path / "c", image_size=(8, 8))
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset(str(tmp_path / "nowhere"), tmp_path / "c")


def test_class_with_only_undecodable_files(tmp_path):
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    noise_png(root / "a" / "x.png")
    (root / "b" / "y.png").write_bytes(b"junk")
    with (
        pytest.raises(DataError, match="decodable image in every class"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        load_dataset(str(root), tmp_path / "c", image_size=(8, 8))


def test_unknown_split_folder_next_to_train(split_folder, tmp_path):
    (split_folder / "extra").mkdir()
    with pytest.raises(DataError, match="extra"):
        load_dataset(str(split_folder), tmp_path, image_size=(28, 28))


def test_parallel_decoding_matches_in_process(digit_folder, monkeypatch):
    paths = sorted(digit_folder.rglob("*.*"))[:40]
    options = folders.FolderOptions((28, 28), 1)
    serial, ok_serial = image_files.decode_images(paths, options, workers=0)
    monkeypatch.setattr(image_files, "PARALLEL_FROM", 1)
    parallel, ok_parallel = image_files.decode_images(paths, options, workers=2)
    assert torch.equal(serial, parallel) and ok_serial.all() and ok_parallel.all()


def test_folder_options_with_named_dataset_is_an_error(cache_dir):
    with pytest.raises(Exception, match="only with an image folder"):
        load_dataset("mnist-subset", cache_dir, channels=3)


def test_in_memory_refused_before_decoding_when_too_large(digit_folder, tmp_path):
    options = folders.FolderOptions((28, 28), 1)
    with pytest.raises(DataError, match="smaller --image-size") as info:
        folders.load_image_folder(
            digit_folder, options, tmp_path, max_bytes=28 * 28 * 50, stream=False
        )
    assert "90 images of 1x28x28" in str(info.value) and "stream=False" in str(info.value)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "folders").exists()
