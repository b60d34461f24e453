"""End to end through the CLI: training on a folder of real MNIST digits (PNG/JPEG/BMP), with
augmentation, then evaluate, predict, resume and show; every bad input is one line, exit 2."""

import json
import shutil

import pytest
from PIL import Image

from cli_helpers import assert_one_line_error, run_cli
from cnnlab.cli import main
from pictures import grey_levels, read_png

from .conftest import DIGITS, noise_png

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("folder-cli")


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, digit_folder):
    """lenet5 trained through the CLI on the digit folder, with augmentation."""
    root = tmp_path_factory.mktemp("folder-run")
    status = main(
        [
            "train",
            "lenet5",
            "--data",
            str(digit_folder),
            "--out",
            str(root / "run"),
            "--epochs",
            "3",
            "--schedule",
            "constant",
            "--lr",
            "0.003",
            "--batch-size",
            "16",
            "--augment",
            "rotation_range=10,width_shift_range=0.1,zoom_range=0.1",
            "--cache-dir",
            str(root / "cache"),
            "--json",
        ]
    )
    assert status == 0
    return root


def test_train_on_folder_stores_classes_options_and_augmentation(folder_run, digit_folder):
    saved = json.loads((folder_run / "run" / "config.json").read_text())
    assert saved["config"]["data"] == str(digit_folder.resolve())
    assert saved["meta"]["classes"] == list(DIGITS)
    # defaults: the model's input, LeNet-5's 1 x 32 x 32
    assert saved["meta"]["data_options"] == {"image_size": [32, 32], "channels": 1, "strict": False}
    assert saved["meta"]["preprocessing"]["image_size"] == [32, 32]
    assert saved["meta"]["augment"] == "rotation_range=10,width_shift_range=0.1,zoom_range=0.9:1.1"


def test_evaluate_and_predict_a_folder_run(folder_run, digit_folder, capsys, tmp_path):
    run, cache = folder_run / "run", folder_run / "cache"
    status, out, err = run_cli(capsys, "evaluate", run, "--cache-dir", cache, "--json")
    assert status == 0, err
    report = json.loads(out)
    assert report["classes"] == list(DIGITS) and report["examples"] == 9
    assert report["accuracy"] >= 0.6  # three easy digits, 81 training images, 3 epochs
    # another folder is converted as the run's data was (LeNet-5's 1 x 32 x 32)
    other = tmp_path / "other"
    shutil.copytree(digit_folder, other)
    status, out, err = run_cli(
        capsys, "evaluate", run, "--data", other, "--cache-dir", cache, "--json"
    )
    assert status == 0, err
    assert json.loads(out)["accuracy"] == report["accuracy"]
    # a digit as a big RGB JPEG on a light background: predict converts it like training
    digit = Image.open(sorted((digit_folder / "7").glob("*.png"))[0]).convert("L")
    big = tmp_path / "seven.jpg"
    digit.resize((112, 112)).convert("RGB").save(big, quality=95)
    status, out, err = run_cli(capsys, "predict", run, big, "--json")
    assert status == 0, err
    assert json.loads(out)[0]["top_k"][0]["class"] in DIGITS


def test_resume_a_folder_run_reloads_the_same_data(folder_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(folder_run / "run", run)
    status, _out, err = run_cli(
        capsys, "train", "--resume", run, "--epochs", "4", "--cache-dir", folder_run / "cache"
    )
    assert status == 0, err
    history = json.loads((run / "history.json").read_text())
    assert history["epoch"] == [1, 2, 3, 4]


def test_explicit_size_channels_and_strict(digit_folder, tmp_path, capsys):
    folder = tmp_path / "digits"
    shutil.copytree(digit_folder, folder)
    (folder / "1" / "broken.png").write_bytes(b"junk")
    args = ["--epochs", "1", "--batch-size", "32", "--cache-dir", tmp_path / "cache"]
    status, _, err = run_cli(
        capsys, "train", "lenet5", "--data", folder, "--out", tmp_path / "strict", "--strict", *args
    )
    assert_one_line_error(status, err, "--strict", "broken.png")
    status, _out, err = run_cli(
        capsys,
        "train",
        "lenet5",
        "--data",
        folder,
        "--out",
        tmp_path / "rgb",
        "--channels",
        "3",
        "--image-size",
        "28",
        *args,
    )
    assert status == 0, err
    assert "cnnlab: warning: skipped 1 file(s)" in err and "broken.png" in err
    assert err.count("cnnlab: warning: skipped") == 1, err  # loaded to train, then to test: once
    saved = json.loads((tmp_path / "rgb" / "config.json").read_text())
    assert saved["meta"]["input_shape"] == [3, 32, 32]  # 28 x 28 RGB, padded for LeNet-5
    assert saved["config"]["image_size"] == [28, 28] and saved["config"]["channels"] == 3


def test_bad_inputs_are_one_line_and_exit_2(digit_folder, tmp_path, capsys, cache_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    single = tmp_path / "single"
    (single / "cats").mkdir(parents=True)
    noise_png(single / "cats" / "a.png")
    hollow = tmp_path / "hollow"
    (hollow / "a").mkdir(parents=True)
    (hollow / "b").mkdir()
    noise_png(hollow / "a" / "x.png")
    cases = [
        (["--data", empty], "no sub-folders"),
        (["--data", single], "at least 2 classes"),
        (["--data", hollow], "empty class folder"),
        (["--data", tmp_path / "missing"], "unknown dataset"),
        (["--data", digit_folder, "--augment", "zoom_range=-0.5"], "zoom_range"),
        (["--data", digit_folder, "--augment", "rotation=30"], "'rotation'"),
        (["--data", digit_folder, "--augment", "fill_mode=mirror"], "fill_mode"),
        (["--data", digit_folder, "--channels", "2"], "--channels"),
        (["--data", digit_folder, "--image-size", "0"], "--image-size"),
        (["--data", "mnist-subset", "--image-size", "32"], "only with an image folder"),
    ]
    for i, (extra, fragment) in enumerate(cases):
        out = tmp_path / f"run{i}"
        status, _, err = run_cli(
            capsys, "train", "lenet5", "--out", out, "--cache-dir", cache_dir, *extra
        )
        assert_one_line_error(status, err, fragment)


def test_show_plain_and_augmented(digit_folder, tmp_path, capsys, cache_dir):
    status, _, err = run_cli(
        capsys, "show", digit_folder, "--output", tmp_path / "grid.png", "--cache-dir", cache_dir
    )
    assert status == 0, err
    with Image.open(tmp_path / "grid.png") as image:
        assert image.size[0] > 400 and image.size[1] > 400
    status, _out, err = run_cli(
        capsys,
        "show",
        "mnist-subset",
        "--augment",
        "rotation_range=30,zoom_range=0.2,pca_lighting=0.1,random_erasing=0.5",
        "--count",
        "5",
        "--versions",
        "3",
        "--output",
        tmp_path / "aug.png",
        "--cache-dir",
        cache_dir,
    )
    assert status == 0, err
    pixels = read_png(tmp_path / "aug.png")
    assert grey_levels(pixels) > 128  # rotated, zoomed, relit digits: interpolated greys
    status, _, err = run_cli(
        capsys, "show", "mnist-subset", "--augment", "zoom_range=-1", "--cache-dir", cache_dir
    )
    assert_one_line_error(status, err, "zoom")
    status, _, err = run_cli(
        capsys, "show", "mnist-subset", "--count", "0", "--cache-dir", cache_dir
    )
    assert_one_line_error(status, err, "count >= 1")
