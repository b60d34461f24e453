"""Helpers for tests that run the command line in real processes (locks, kills, signals)."""

from __future__ import annotations

import contextlib
import json
import os
import select
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


def children(pid: int) -> list[int]:
    """The pids of the processes whose parent is ``pid`` (Linux: /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # the parent pid field
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


FORKING_CLI = Path(__file__).parent / "forking_cli.py"


class ForkedCommand:
    """A command a :class:`ForkingCli` runs in a child process of its own; ``poll``, ``kill``
    and ``wait`` as :class:`subprocess.Popen`'s.

    Attributes:
        pid: the child's process id (a real process: SIGKILL it as any other).
        stderr: the file its stderr goes to.
        returncode: its exit status once it ended and was reaped (minus the signal number
            when a signal ended it), else None.
    """

    def __init__(self, server: ForkingCli, pid: int, stderr: Path) -> None:
        self.server, self.pid, self.stderr = server, pid, stderr
        self._pidfd = os.pidfd_open(pid)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit status if the child has ended, else None."""
        if self.returncode is None and select.select([self._pidfd], [], [], 0)[0]:
            self._reap()
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the child, if it still runs."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def wait(self, timeout: float = TIMEOUT) -> int:
        """The exit status once the child ends (killed if it outlives ``timeout``)."""
        if self.returncode is None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                self.kill()
                self._reap()
                raise AssertionError(f"cnnlab (pid {self.pid}) did not end in {timeout} s")
            self._reap()
        return self.returncode

    def err(self) -> str:
        """What the child wrote on stderr."""
        return self.stderr.read_text()

    def _reap(self) -> None:
        self.returncode = self.server.reap(self.pid)
        os.close(self._pidfd)


class ForkingCli:
    """``cnnlab`` commands (with the ``mnist-subset`` dataset) run in fresh processes forked
    from one that imported the CLI and torch once (tests/forking_cli.py): each command is a
    real process, started in milliseconds instead of seconds. Use as a context manager."""

    def __init__(self, cache_dir: Path, logs: Path) -> None:
        self.logs = logs
        self.server = subprocess.Popen(
            [sys.executable, str(FORKING_CLI), str(cache_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=interruptible,
        )
        self.commands: list[ForkedCommand] = []

    def _ask(self, request: dict) -> dict:
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        if not select.select([self.server.stdout], [], [], TIMEOUT)[0]:
            raise AssertionError(f"the forking cnnlab did not answer {request} in {TIMEOUT} s")
        line = self.server.stdout.readline()
        if not line:
            raise AssertionError(f"the forking cnnlab ended (status {self.server.wait()})")
        return json.loads(line)

    def start(self, *argv: object) -> ForkedCommand:
        """``cnnlab ARGV`` in a new child process."""
        stderr = self.logs / f"command-{len(self.commands) + 1}.err"
        pid = self._ask({"run": [str(a) for a in argv], "stderr": str(stderr)})["pid"]
        self.commands.append(ForkedCommand(self, pid, stderr))
        return self.commands[-1]

    def reap(self, pid: int) -> int:
        """The exit status of the ended child ``pid`` (which it reaps)."""
        return self._ask({"wait": pid})["status"]

    def __enter__(self) -> ForkingCli:
        return self

    def __exit__(self, *exc: object) -> None:
        for command in self.commands:  # none outlives the test
            command.kill()
        self.server.kill()
        self.server.communicate(timeout=60)
