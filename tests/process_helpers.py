"""Helpers for tests that run the command line in real processes (locks, kills, signals)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

SUBSET_CLI = Path(__file__).parent / "subset_cli.py"
TIMEOUT = 300.0  # seconds any one process of these tests may take


def start_cli(cache_dir: Path, *argv: object, group: bool = False) -> subprocess.Popen[str]:
    """``cnnlab ARGV`` (with the ``mnist-subset`` dataset) in a new process; stderr piped.
    ``group``: in a process group of its own (stop it and its workers with :func:`stop`)."""
    return subprocess.Popen(
        [sys.executable, str(SUBSET_CLI), str(cache_dir), *map(str, argv)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=group,
        preexec_fn=interruptible,
    )


def interruptible() -> None:
    """In a child before it runs: Ctrl-C (SIGINT) handled as usual, even when the tests run
    as a background job, whose processes inherit an ignored SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop(process: subprocess.Popen[str]) -> None:
    """SIGKILL ``process`` (and its process group when it leads one) and reap it."""
    try:
        if os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except ProcessLookupError:
        pass
    process.communicate(timeout=60)


def finish(process: subprocess.Popen[str], timeout: float = TIMEOUT) -> tuple[int, str]:
    """(exit status, stderr) once ``process`` ends (killed if it outlives ``timeout``)."""
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, err


def error_lines(err: str) -> list[str]:
    """The ``cnnlab: error:`` lines of a process's stderr."""
    return [line for line in err.splitlines() if line.startswith("cnnlab: error:")]


def wait_for(
    condition: Callable[[], bool], processes: Sequence[subprocess.Popen[str]], what: str
) -> None:
    """Poll ``condition`` until it holds; fail if all ``processes`` end first, or after
    :data:`TIMEOUT` seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if all(p.poll() is not None for p in processes):
            errors = " | ".join(p.stderr.read() for p in processes)
            raise AssertionError(f"the processes ended before {what}: {errors}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
