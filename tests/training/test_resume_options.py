"""`train --resume`: the command that started a run, with `--resume RUN` appended, is
accepted; options that would make it another run are refused, one line per option with both
values; a resume says where it continues, and that a finished run is finished."""

from __future__ import annotations

import json
import signal

import pytest

from cnnlab.training.checkpoint import load_checkpoint
from process_helpers import finish, start_cli, wait_for

START = (
    "train", "lenet5", "--data", "mnist-subset", "--per-class", "40", "--batch-size", "32",
    "--lr", "0.005", "--schedule", "constant", "--seed", "3", "--no-progress",
)  # fmt: skip


@pytest.fixture
def started(cli, tmp_path):
    out = tmp_path / "run"
    status, _, err = cli(*START, "--out", out, "--epochs", "1")
    assert status == 0, err
    return out


def test_the_same_command_with_resume_appended_works(cli, started):
    out = started
    # finished: nothing left to train, and it says so
    status, _, err = cli(*START, "--out", out, "--epochs", "1", "--resume", out)
    assert status == 0, err
    assert f"{out} is finished: 1 of 1 epochs trained" in err
    # --epochs may grow (constant schedule), --device may change
    status, _, err = cli(*START, "--out", out, "--epochs", "2", "--device", "cpu", "--resume", out)
    assert status == 0, err
    assert (
        f"resuming {out} from its checkpoint at end of epoch 1: continuing at epoch 2 step 1" in err
    )
    history = json.loads((out / "history.json").read_text())
    assert history["epoch"] == [1, 2]
    assert json.loads((out / "config.json").read_text())["config"]["epochs"] == 2


def test_conflicting_options_are_refused_one_line_each(cli, started, tmp_path):
    out = started
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    status, stdout, err = cli(
        "train", "alexnet", "--data", tmp_path, "--out", tmp_path / "elsewhere", "--lr", "0.1",
        "--batch-size", "64", "--optimizer", "sgd", "--resume", out,
    )  # fmt: skip
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and stdout == ""
    assert len(lines) == 6, err
    expected = {
        "MODEL": ("MODEL lenet5", "MODEL alexnet"),
        "--data": ("--data mnist-subset", f"--data {tmp_path}"),
        "--out": (f"--out {out}", f"--out {tmp_path / 'elsewhere'}"),
        "--lr": ("--lr 0.005", "--lr 0.1"),
        "--batch-size": ("--batch-size 32", "--batch-size 64"),
        "--optimizer": ("--optimizer adam", "--optimizer sgd"),
    }
    for saved, given in expected.values():
        assert any(saved in line and given in line for line in lines), (saved, given, err)
    assert all(line.startswith("cnnlab: error: expected ") for line in lines)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not (tmp_path / "elsewhere").exists()


def test_epochs_of_a_one_cycle_run_are_fixed(cli, expect_error, tmp_path):
    out = tmp_path / "run"
    status, _, err = cli(*START[:-5], "--out", out, "--epochs", "1", "--no-progress")
    assert status == 0, err
    status, _, err = cli("train", "--resume", out, "--epochs", "3")
    expect_error(status, err, "expected --epochs 1 as saved", "received --epochs 3", "onecycle")


def test_ctrl_c_says_how_to_resume_and_the_resume_where_it_continues(tmp_path, cache_dir, cli):
    """Ctrl-C (SIGINT) to a real training process; the resume runs in this test's process."""
    out = tmp_path / "run"
    argv = (*START, "--out", out, "--epochs", "30", "--checkpoint-every", "5")
    process = start_cli(cache_dir, *argv)
    try:
        wait_for(lambda: (out / "last.safetensors").exists(), [process], "a checkpoint")
        process.send_signal(signal.SIGINT)
        status, err = finish(process)
    finally:
        process.kill()
    assert status == 130, err
    last = err.strip().splitlines()[-1]
    assert last == (
        f"cnnlab: interrupted; continue the run from its last checkpoint with: "
        f"cnnlab train --resume {out}"
    ), err
    state = load_checkpoint(out / "last.safetensors").training
    epoch, step = state["epoch"], state["step"]
    status, _, err = cli(*argv, "--resume", out, "--epochs", epoch + 1)
    assert status == 0, err
    assert f"continuing at epoch {epoch + 1} step {step + 1} of 12" in err, err
