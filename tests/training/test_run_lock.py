"""One owner per run directory: real `cnnlab train` processes racing for one run folder.

Each contender that loses is refused with one line (exit 2) naming the process that holds the
run; a holder killed with SIGKILL never blocks the next command, and is never named once dead.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from PIL import Image

from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.run_lock import LOCK_FILE, RunBusyError, RunLock
from process_helpers import alive, children, finish, start_cli, stop, wait_for
from run_helpers import trained_subset_run

# long enough that the holder is still training whatever the machine's load; killed by the test
LONG = ("--epochs", "60", "--schedule", "constant", "--batch-size", "32", "--no-progress")
NEW = ("train", "lenet5", "--data", "mnist-subset", "--per-class", "60")


def _holder_pid(run) -> int | None:
    try:
        return json.loads((run / LOCK_FILE).read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def _refused(process: subprocess.Popen[str], holder: int, run) -> str:
    status, err = finish(process)
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, (status, err)
    assert f"process {holder} " in lines[0] and str(run) in lines[0], lines[0]
    return lines[0]


def test_two_trains_on_one_out_started_together(tmp_path, cache_dir):
    out = tmp_path / "run"
    a = start_cli(cache_dir, *NEW, "--out", out, *LONG)
    b = start_cli(cache_dir, *NEW, "--out", out, *LONG)
    try:
        wait_for(lambda: (out / "last.safetensors").exists(), [a, b], "a checkpoint")
        winner, loser = (a, b) if _holder_pid(out) == a.pid else (b, a)
        assert _holder_pid(out) == winner.pid
        line = _refused(loser, winner.pid, out)
        assert "holds" in line
        assert winner.poll() is None  # still training, alone
        config = json.loads((out / "config.json").read_text())["config"]
        assert config["epochs"] == 60
    finally:
        stop(a)
        stop(b)


@pytest.fixture
def one_epoch_run(tmp_path_factory, cache_dir):
    """A fresh one-epoch LeNet-5 run on 60 digits a class (each test resumes its own)."""
    return trained_subset_run(
        tmp_path_factory,
        cache_dir,
        epochs=1,
        schedule="constant",
        batch_size=32,
        per_class=60,
    )


def test_two_resumes_at_once(one_epoch_run, cache_dir):
    run = one_epoch_run
    resume = ("train", "--resume", run, "--epochs", "60", "--no-progress")
    a, b = start_cli(cache_dir, *resume), start_cli(cache_dir, *resume)
    try:
        wait_for(lambda: _holder_pid(run) in (a.pid, b.pid), [a, b], "a holder")
        winner, loser = (a, b) if _holder_pid(run) == a.pid else (b, a)
        _refused(loser, winner.pid, run)
        assert winner.poll() is None
    finally:
        stop(a)
        stop(b)


def _refused_in_process(cli, holder: int, run) -> str:
    """``cnnlab train --resume RUN`` (run in this process, which holds no lock) is refused
    naming ``holder``."""
    status, _, err = cli("train", "--resume", run, "--no-progress")
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, (status, err)
    assert f"process {holder} " in lines[0] and str(run) in lines[0], lines[0]
    return lines[0]


def test_resume_while_training_is_refused_and_a_killed_holder_never_blocks(
    tmp_path, cache_dir, cli
):
    """The contenders run in this test's process: the holders are other processes."""
    out = tmp_path / "run"
    trainer = start_cli(cache_dir, *NEW, "--out", out, *LONG)
    try:
        wait_for(lambda: (out / "last.safetensors").exists(), [trainer], "the first checkpoint")
        _refused_in_process(cli, trainer.pid, out)
        assert trainer.poll() is None
    finally:
        stop(trainer)  # SIGKILL: its record stays in the lock file, its lock does not
    dead = trainer.pid
    assert _holder_pid(out) == dead
    # a new holder: contenders now name it, never the dead one
    holder = start_cli(cache_dir, "train", "--resume", out, *LONG[:2], "--no-progress")
    try:
        wait_for(lambda: _holder_pid(out) == holder.pid, [holder], "the new holder's record")
        line = _refused_in_process(cli, holder.pid, out)
        assert f"process {dead} " not in line
    finally:
        stop(holder)
    # and once it is killed as well, a resume simply goes on, to the end
    done = load_checkpoint(out / "last.safetensors").training["epoch"]
    status, _, err = cli("train", "--resume", out, "--epochs", done + 1, "--no-progress")
    assert status == 0, err
    assert f"continuing at epoch {done + 1} step 1" in err
    assert len(json.loads((out / "history.json").read_text())["epoch"]) == done + 1


@pytest.fixture
def digits(tmp_path, subset):
    """A folder of 400 subset digits (the workers of --nproc know only the named datasets)."""
    root = tmp_path / "digits"
    for i in range(400):
        folder = root / str(int(subset.train.labels[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(subset.train.images[i, 0].numpy(), "L").save(folder / f"{i:03d}.png")
    return root


def test_a_run_of_several_processes_is_held_by_its_launcher(tmp_path, cache_dir, digits, cli):
    """``--nproc 2``: the launcher holds the run for its workers (rank 0 trains on, as its
    child), and a resume started meanwhile (in this test's process) is refused naming the
    launcher. Killed with SIGKILL, the launcher takes its workers with it: nobody trains on
    in the run it no longer holds."""
    out = tmp_path / "run"
    endless = ("--epochs", "100000", *LONG[2:])
    argv = ("train", "lenet5", "--data", digits, "--out", out, *endless, "--nproc", "2")
    launcher, workers = start_cli(cache_dir, *argv), []
    try:
        wait_for(lambda: (out / "last.safetensors").exists(), [launcher], "a checkpoint")
        assert _holder_pid(out) == launcher.pid
        _refused_in_process(cli, launcher.pid, out)
        assert launcher.poll() is None
        workers = children(launcher.pid)
        assert len(workers) == 2, workers
    finally:
        launcher.kill()  # SIGKILL, to the launcher alone (its workers run in their own sessions)
        launcher.wait(timeout=60)
        deadline = time.monotonic() + 60  # they go at once; an orphan would train for hours
        while any(map(alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.01)
        survivors = [pid for pid in workers if alive(pid)]
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        launcher.communicate(timeout=60)  # its stderr, once no worker holds it open
    assert not survivors, "workers outlived their launcher"


_FLOCK_WITHOUT_RECORD = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_a_stale_record_is_never_named(tmp_path):
    """The lock file still names a dead process while another one, which has not written its
    record yet, holds the flock: the refusal names the live holder the kernel reports."""
    run = tmp_path / "run"
    run.mkdir()
    stale = {"pid": 4_000_000, "host": os.uname().nodename, "command": "x", "since": "then"}
    (run / LOCK_FILE).write_text(json.dumps(stale))
    with RunLock(run).held():  # nobody holds it: the stale record does not block
        pass
    (run / LOCK_FILE).write_text(json.dumps(stale))
    holder = subprocess.Popen(
        [sys.executable, "-c", _FLOCK_WITHOUT_RECORD, str(run / LOCK_FILE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([holder.stdout], [], [], 120)
        assert ready and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusyError) as info:
            RunLock(run).acquire()
        message = str(info.value)
        assert "\n" not in message
        if os.path.exists("/proc/locks"):
            assert f"process {holder.pid} " in message
        assert "4000000" not in message
    finally:
        holder.kill()
        holder.wait(timeout=60)
    lock = RunLock(run)
    lock.acquire()  # the holder was killed: the run is free at once
    lock.release()
