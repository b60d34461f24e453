"""A disk that fills up during training: one line naming the file, the error and the intact
previous checkpoint, exit 2; the run resumes once there is space again.

The disk is a small tmpfs mounted for the test, which needs root: the test is skipped (with
that reason) otherwise.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from cnnlab.training.checkpoint import load_checkpoint
from process_helpers import finish, start_cli, wait_for


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def _fill(disk) -> int:
    """Write a file until the disk is full; returns the bytes written."""
    written = 0
    with open(disk / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                written += handle.write(b"\0" * 4096)
        except OSError:
            pass
    return written


def test_a_full_disk_during_a_checkpoint_write(small_disk, cache_dir, cli):
    """Training in a real process fills the disk; the resume runs in this test's process."""
    out = small_disk / "run"
    argv = (
        "train", "lenet5", "--data", "mnist-subset", "--per-class", "40", "--batch-size", "16",
        "--epochs", "40", "--schedule", "constant", "--checkpoint-every", "1", "--no-progress",
    )  # fmt: skip
    process = start_cli(cache_dir, *argv, "--out", out)
    try:
        wait_for(lambda: (out / "last.safetensors").exists(), [process], "a checkpoint")
        _fill(small_disk)
        status, err = finish(process)
    finally:
        process.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, err
    line = lines[0]
    assert "No space left on device [ENOSPC]" in line, line
    assert f"expected to write {out}/" in line, line
    assert f"the previous checkpoint {out / 'last.safetensors'} (" in line, line
    assert f"cnnlab train --resume {out}" in line, line
    kept = load_checkpoint(out / "last.safetensors")  # intact
    assert kept.training["step"] + kept.training["epoch"] > 0
    assert not list(out.glob(".*.tmp"))  # the failed write's temporary file is gone
    (small_disk / "filler").unlink()
    epoch = kept.training["epoch"]
    status, _, err = cli("train", "--resume", out, "--epochs", epoch + 1, "--no-progress")
    assert status == 0, err
    assert f"continuing at epoch {epoch + 1}" in err
