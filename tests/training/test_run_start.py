"""Before a run starts: a device that does not exist is refused before anything is written, a
failed command leaves no empty --out folder, and too few steps per epoch get one warning."""

from __future__ import annotations

import pytest
import torch

from cnnlab.training.run_lock import LOCK_FILE
from cnnlab.training.steps_guard import few_steps_warning, suggested_batch_size

TRAIN = ("train", "lenet5", "--data", "mnist-subset", "--per-class", "40", "--no-progress")


@pytest.mark.parametrize(
    ("device", "fragment"),
    [
        ("cuda", "expected a CUDA device, received device='cuda'"),
        ("cuda:1", "expected a CUDA device, received device='cuda:1'"),
        ("cuda:x", "expected a device auto, cpu, cuda or cuda:N, received device='cuda:x'"),
        ("tpu", "expected device auto, cpu or cuda[:N], received device='tpu'"),
    ],
)
def test_a_device_that_does_not_exist_is_refused_before_anything_is_written(
    cli, expect_error, tmp_path, device, fragment
):
    if torch.cuda.is_available() and device.startswith("cuda"):
        pytest.skip("this machine has CUDA: the device exists")
    out = tmp_path / "new" / "run"
    status, _, err = cli(*TRAIN, "--out", out, "--device", device)
    expect_error(status, err, fragment)
    assert not (tmp_path / "new").exists()


def test_resuming_on_a_missing_device_is_refused(cli, expect_error, trained_run):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the device exists")
    status, _, err = cli("train", "--resume", trained_run, "--device", "cuda")
    expect_error(status, err, "expected a CUDA device")


@pytest.mark.parametrize(
    "argv",
    [
        ("train", "nosuchnet", "--data", "mnist-subset"),  # unknown model (found late)
        ("train", "lenet5", "--data", "no/such/folder"),  # missing data
        ("train", "lenet5", "--data", "mnist-subset", "--model-option", "nosuch=1"),
    ],
)
def test_no_failed_command_leaves_an_empty_out_folder(cli, tmp_path, argv):
    out = tmp_path / "a" / "b"
    status, _, err = cli(*argv, "--out", out)
    assert status == 2, err
    assert not (tmp_path / "a").exists(), list((tmp_path / "a").rglob("*"))


def test_an_empty_folder_given_stays_as_it_was(cli, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    status, _, err = cli("train", "nosuchnet", "--data", "mnist-subset", "--out", out)
    assert status == 2, err
    assert out.is_dir() and list(out.iterdir()) == []


def test_a_run_folder_holds_its_lock_file_only_as_a_hidden_file(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert LOCK_FILE in names and LOCK_FILE.startswith(".")
    assert (trained_run / LOCK_FILE).read_text() == ""  # released: no holder named


def test_too_few_steps_get_one_warning_with_a_batch_size(cli, tmp_path):
    status, _, err = cli(*TRAIN, "--per-class", "10", "--out", tmp_path / "a", "--epochs", "1")
    assert status == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("cnnlab: warning:")]
    assert warnings == [
        "cnnlab: warning: --batch-size 128 on 90 training examples gives the whole training set "
        "in one batch, 1 step per epoch (1 in 1 epochs), too few to learn; use --batch-size 8 "
        "or lower (12 steps per epoch)"
    ], err
    status, _, err = cli(*TRAIN, "--out", tmp_path / "b", "--epochs", "1", "--batch-size", "100000")
    assert status == 0, err
    assert "use --batch-size 32 or lower" in err
    status, _, err = cli(*TRAIN, "--out", tmp_path / "c", "--epochs", "1", "--batch-size", "32")
    assert status == 0 and "cnnlab: warning: --batch-size" not in err, err


def test_the_suggested_batch_size():
    assert suggested_batch_size(54000) == 128
    assert suggested_batch_size(97) == 8
    assert suggested_batch_size(5) == 1
    assert few_steps_warning(54000, 100000, 3).startswith("--batch-size 100000 on 54000")
    assert few_steps_warning(54000, 128, 3) is None
    assert few_steps_warning(8, 128, 3) is not None
    assert few_steps_warning(3, 1, 3) is None  # nothing smaller to suggest
