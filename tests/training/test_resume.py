"""Killing training at any moment and resuming gives bitwise the same run (CPU)."""

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnlab.training.checkpoint import load_checkpoint
from cnnlab.training.run import fit
from run_helpers import assert_same_run, crash_then_resume

OPTIONS = {"epochs": 2, "batch_size": 256, "checkpoint_every": 4, "seed": 5}
SUBSET_CLI = Path(__file__).parent.parent / "subset_cli.py"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("reference") / "run"
    fit("lenet5", "mnist-subset", out=out, cache_dir=cache_dir, verbose=False, **OPTIONS)
    return out


@pytest.mark.parametrize("crash_after", [3, 14, 15])  # mid-epoch, right after an epoch boundary
def test_crash_and_resume_is_bitwise_identical(
    tmp_path, cache_dir, reference, monkeypatch, crash_after
):
    out = tmp_path / "run"
    crash_then_resume(monkeypatch, "lenet5", out, cache_dir, OPTIONS, crash_after)
    assert_same_run(out, reference)


def _kill_after_writes(
    process: subprocess.Popen, checkpoint: Path, writes: int, rng: random.Random
) -> bool:
    """SIGKILL ``process`` a random 0-20 ms after it has written ``checkpoint`` ``writes``
    times (so some kills land inside the next write); False if it finished first."""
    seen, last = 0, None
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        try:
            stamp = checkpoint.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = None
        if stamp is not None and stamp != last:
            seen, last = seen + 1, stamp
            if seen >= writes:
                time.sleep(rng.uniform(0.0, 0.02))
                process.kill()
                process.wait()
                return True
        time.sleep(0.002)
    return False


def test_sigkill_at_random_moments_then_resume(tmp_path, cache_dir, reference):
    """Real processes killed with SIGKILL: once during start-up, then four times a random few
    checkpoint writes into training (checkpoints every step, so kills also land inside a
    write); resumed until done; the same final run as one never interrupted."""
    out = tmp_path / "run"
    first = [
        "train",
        "lenet5",
        "--data",
        "mnist-subset",
        "--out",
        str(out),
        "--epochs",
        "2",
        "--batch-size",
        "256",
        "--seed",
        "5",
        "--checkpoint-every",
        "1",
        "--no-progress",
    ]
    rng = random.Random(1234)
    kills = 0
    for attempt in range(8):
        # the saved config (checkpoint every step) is what a resume uses
        command = ["train", "--resume", str(out)] if (out / "config.json").exists() else first
        process = subprocess.Popen(
            [sys.executable, str(SUBSET_CLI), str(cache_dir), *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if attempt == 0:
            time.sleep(rng.uniform(0.2, 0.8))  # still importing / loading data
            process.kill()
            process.wait()
            killed = True
        elif attempt <= 4:
            killed = _kill_after_writes(process, out / "last.safetensors", rng.randint(2, 5), rng)
        else:
            process.wait(timeout=600)
            killed = False
        if killed:
            kills += 1
            for checkpoint in out.glob("*.safetensors"):
                load_checkpoint(checkpoint)  # never corrupt
            continue
        assert process.returncode == 0, process.stderr.read().decode()
        break
    else:
        pytest.fail("training never finished")
    assert kills >= 2, "the test must actually interrupt training"
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["checkpoint_every"] == 1 and config["seed"] == 5
    reference_every_step = tmp_path / "reference"
    fit(
        "lenet5",
        "mnist-subset",
        out=reference_every_step,
        cache_dir=cache_dir,
        verbose=False,
        **{**OPTIONS, "checkpoint_every": 1},
    )
    assert_same_run(out, reference_every_step)
