"""The guarded decoder fuzzed: 66 hostile files (truncated, random bytes, bombs, 16-bit, CMYK,
palette with alpha, animated, other formats, links, FIFOs, directories, newline names) through
``cnnlab predict`` and through image folders in memory, streamed and under ``--strict``. Each
ends in one line and exit 2, or in the right prediction."""

from __future__ import annotations

import json
import os
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.datasets import load_dataset
from cnnlab.data.images import load_image
from cnnlab.errors import DataError, DataWarning
from hostile_images import BUDGET, write_hostile_files

from .conftest import write_digits

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("hostile-images")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, subset):
    """``(folder, [(path, expected)], clean digit path)`` from the first test digit (a 7)."""
    folder = tmp_path_factory.mktemp("hostile") / "files"
    digit = subset.test.images[0, 0].numpy()
    return folder, write_hostile_files(folder, digit), folder / "good.png"


def _predicted(out: str) -> str:
    (prediction,) = json.loads(out)
    return prediction["top_k"][0]["class"]


def test_every_hostile_file_through_predict(hostile, trained_run, cli, expect_error):
    _, cases, good = hostile
    assert len(cases) >= 50
    status, out, err = cli("predict", trained_run, good, "--json", cache=False)
    assert status == 0, err
    clean = _predicted(out)
    for path, expected in cases:
        status, out, err = cli("predict", trained_run, path, "--json", cache=False)
        if expected == "ok":
            assert status == 0 and _predicted(out) == clean, (path, err)
        else:
            line = expect_error(status, err, expected)
            assert "Traceback" not in err and (str(path) in line or repr(str(path)) in line)


def test_the_pixel_budget_can_be_raised(hostile, trained_run, cli, expect_error):
    folder, _, _ = hostile
    big = folder / "big-9000.png"
    expect_error(*cli("predict", trained_run, big, cache=False)[::2], BUDGET, "81.0 megapixels")
    status, out, err = cli(
        "predict", trained_run, big, "--max-megapixels", "100", "--json", cache=False
    )
    assert status == 0 and len(json.loads(out)) == 1, err
    expect_error(
        *cli("predict", trained_run, big, "--max-megapixels", "0", cache=False)[::2], "positive"
    )


def test_sixteen_bit_values_are_scaled_not_clipped(tmp_path):
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)  # 0..65535
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    decoded = load_image(tmp_path / "ramp.png", 1, (256, 256))[0].numpy()
    assert np.array_equal(decoded, ((ramp.astype(np.int64) + 128) // 257).astype(np.uint8))
    assert len(np.unique(decoded)) == 256  # clipping left 5 values near white
    levels = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    Image.fromarray(levels).save(tmp_path / "levels.png")
    exact = load_image(tmp_path / "levels.png", 1, (16, 16))[0].numpy()
    assert np.array_equal(exact, np.arange(256, dtype=np.uint8).reshape(16, 16))


@pytest.fixture
def hostile_folder(tmp_path, subset, hostile):
    """Real digits of three classes, with every hostile file (and link) inside class 0/."""
    root = tmp_path / "digits"
    write_digits(root, subset, per_class=12)
    source, cases, _ = hostile
    target = root / "0" / "hostile"
    target.mkdir()
    for path in source.iterdir():  # every file, link, FIFO and folder, as it is
        if path.is_symlink():
            (target / path.name).symlink_to(target / path.readlink().name)
        elif path.is_dir():
            (target / path.name).mkdir()
        elif path.is_fifo():
            os.mkfifo(target / path.name)
        else:
            shutil.copyfile(path, target / path.name)
    expected = {path.name: what for path, what in cases}
    names = [p.name for p in target.iterdir() if p.name != "folder.png"]  # folder: searched
    good = sum(1 for name in names if expected.get(name) == "ok")
    bad = len(names) - good  # loop-b.png, the other half of the loop, is not in cases
    return root, good, bad


@pytest.mark.parametrize("stream", [False, True])
def test_a_folder_of_hostile_files_skips_them_in_one_warning(hostile_folder, tmp_path, stream):
    root, good, bad = hostile_folder
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splits = load_dataset(
            str(root), tmp_path / "cache", image_size=(28, 28), channels=1, stream=stream, workers=0
        )
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and "\n" not in messages[0] and "\r" not in messages[0]
    assert f"skipped {bad} file(s)" in messages[0]
    for fragment in ("a FIFO", "a dangling symbolic link", "a symbolic link loop", "'"):
        assert fragment in messages[0]
    kept = sum(len(s) for s in (splits.train, splits.test))
    assert kept == 36 + good  # 3 classes x 12 digits, plus every decodable hostile file


def test_a_folder_of_hostile_files_under_strict_is_one_line(hostile_folder, tmp_path, cli):
    root, _, bad = hostile_folder
    with pytest.raises(DataError) as info:
        load_dataset(str(root), tmp_path / "cache", image_size=(28, 28), strict=True, workers=0)
    message = str(info.value)
    assert f"received {bad} bad file(s)" in message and "\n" not in message
    out = tmp_path / "run"
    status, _, err = cli(
        "train", "lenet5", "--data", root, "--out", out, "--strict", "--epochs", "1"
    )
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "--strict" in lines[0], err
