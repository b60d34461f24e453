"""Killing training at any moment and resuming gives bitwise the same run (CPU)."""

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.run import fit
from process_helpers import TIMEOUT, ForkedCommand, ForkingCli, start_cli, stop
from run_helpers import assert_same_run, crash_then_resume

# costly module fixtures: the whole module in one xdist worker (--dist loadgroup; see Makefile)
pytestmark = pytest.mark.xdist_group("resume")

OPTIONS = {"epochs": 2, "batch_size": 256, "checkpoint_every": 4, "seed": 5}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("reference") / "run"
    fit("lenet5", "mnist-subset", out=out, cache_dir=cache_dir, verbose=False, **OPTIONS)
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Bitwise comparisons need the same thread count in every process and every run: the
    automatic choice (cnnlab.threads) follows the machine's load, so it is pinned here (as
    ``--threads`` or ``OMP_NUM_THREADS`` pins it for a user)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        yield


@pytest.mark.parametrize("crash_after", [3, 14, 15])  # mid-epoch, right after an epoch boundary
def test_crash_and_resume_is_bitwise_identical(
    tmp_path, cache_dir, reference, monkeypatch, crash_after
):
    out = tmp_path / "run"
    crash_then_resume(monkeypatch, "lenet5", out, cache_dir, OPTIONS, crash_after)
    assert_same_run(out, reference)


def _kill_after_writes(
    process: ForkedCommand, checkpoint: Path, writes: int, rng: random.Random
) -> bool:
    """SIGKILL ``process`` a random 0-15 ms after it has written ``checkpoint`` ``writes``
    times (checkpoints every step: many kills land inside the next write); False if it
    finished first."""
    seen, last = 0, None
    deadline = time.monotonic() + TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        try:
            stamp = checkpoint.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp is not None and stamp != last:
            seen, last = seen + 1, stamp
            if seen >= writes:
                time.sleep(rng.uniform(0.0, 0.015))
                return _killed(process)
        time.sleep(0.001)
    return False


def _kill_inside_a_write(process: ForkedCommand, run: Path) -> bool:
    """SIGKILL ``process`` the moment a temporary checkpoint file shows up in ``run``: inside
    a write, between creating the file and renaming it; False if it finished first."""
    deadline = time.monotonic() + TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        try:
            names = os.listdir(run)
        except FileNotFoundError:
            names = []
        if any(n.startswith(".last.safetensors.") and n.endswith(".tmp") for n in names):
            return _killed(process)
    return False


def _killed(process: ForkedCommand) -> bool:
    """SIGKILL ``process``; True unless it had ended already."""
    process.kill()
    return process.wait(timeout=60) == -signal.SIGKILL


TORTURE = {"epochs": 3, "batch_size": 16, "per_class": 40, "seed": 5, "checkpoint_every": 1}
KILLS = 25
FRESH_KILLS = 2  # of the kills during start-up: fresh processes still importing
STARTUP_SECONDS = 0.2  # a forked command's start-up: loading data, writing config.json (~0.15 s)


def test_sigkill_at_random_moments_then_resume(tmp_path, cache_dir):
    """Real processes killed with SIGKILL at least 25 times: during start-up (fresh processes
    importing; then loading data, writing config.json), a random 0-15 ms after a random
    checkpoint write, and the moment a checkpoint's temporary file appears (inside a write);
    each time the run folder's checkpoints load, and the next command (the same `train`, or
    `--resume`) is never blocked by the dead holder's lock; resumed until done, the run is
    bitwise the one never interrupted.

    Past the import, the commands run in processes forked from one that imported the CLI and
    torch once (tests/forking_cli.py), so each kill costs the command's work, not its imports.
    """
    out, reference = tmp_path / "run", tmp_path / "reference"
    train = ["train", "lenet5", "--data", "mnist-subset", "--no-progress"]
    for name, value in TORTURE.items():
        train += [f"--{name.replace('_', '-')}", str(value)]
    first = [*train, "--out", str(out)]
    rng = random.Random(1234)
    kills = mid_write = fresh = 0
    with ForkingCli(cache_dir, tmp_path) as forking:
        for _ in range(3 * KILLS):
            # the saved config (checkpoint every step) is what a resume uses
            command = ["train", "--resume", str(out)] if (out / "config.json").exists() else first
            if kills >= KILLS:
                process = forking.start(*command)
                assert process.wait() == 0, process.err()
                break
            if rng.random() < 0.2:  # still importing, loading data or writing config.json
                if fresh < FRESH_KILLS:
                    fresh += 1
                    process = start_cli(cache_dir, *command)
                    time.sleep(rng.uniform(0.1, 1.0))
                    stop(process)
                    killed = process.returncode == -signal.SIGKILL
                else:
                    process = forking.start(*command)
                    time.sleep(rng.uniform(0.0, STARTUP_SECONDS))
                    killed = _killed(process)
            else:
                process = forking.start(*command)
                if rng.random() < 0.3 and (out / "last.safetensors").exists():
                    killed = _kill_inside_a_write(process, out)
                else:
                    writes = rng.randint(1, 2)
                    killed = _kill_after_writes(process, out / "last.safetensors", writes, rng)
            if not killed:
                assert process.wait() == 0, process.err()
                break
            kills += 1
            mid_write += any(out.glob(".last.safetensors.*.tmp"))  # its write was cut short
            for checkpoint in out.glob("*.safetensors"):
                load_checkpoint(checkpoint)  # never corrupt
        else:
            pytest.fail("training never finished")
        # the run never interrupted: the same command, in a process started the same way
        never_killed = forking.start(*train, "--out", reference)
        assert never_killed.wait() == 0, never_killed.err()
    assert kills >= KILLS, f"training finished after only {kills} kills"
    assert mid_write >= 1, "no kill landed inside a checkpoint write"
    assert not list(out.glob(".*.tmp"))  # a killed writer's temporary files are cleaned up
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["checkpoint_every"] == 1 and config["seed"] == 5
    assert_same_run(out, reference)
    print(f"{kills} SIGKILLs, {mid_write} inside a checkpoint write")  # shown with -s
