"""One owner per run directory: an exclusive lock held for the whole life of a training
command (``train``, ``train --resume``, ``finetune``) on a run.

The lock is ``fcntl.flock`` on a file inside the run directory (:data:`LOCK_FILE`). The kernel
releases it when its holder exits, however it exits (SIGKILL included), so a lock left by a
killed process never blocks. While held, the file says who holds it (pid, host, command,
since when); a refused process names that holder, and only a holder the kernel confirms
(``/proc/locks`` on Linux, otherwise a live process of that pid on this host), never a stale
one written by a process that has died.

Several processes (torchrun, DDP): rank 0 holds the lock, or the ``--nproc`` launcher; a
worker whose parent (the launcher's elastic agent) holds the run's lock goes on without it,
and a torchrun restart of the group waits a moment for the dying rank 0 to let go.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cnnlab.errors import ConfigError
from cnnlab.fileio import process_alive

LOCK_FILE = ".cnnlab-lock"
POLL_SECONDS = 0.05


class RunBusyError(ConfigError):
    """Another process holds the run directory."""


@dataclass(frozen=True)
class Holder:
    """The process that holds a run.

    Attributes:
        pid: its process id.
        host: the machine it runs on.
        command: its command line (may be empty when only the kernel named it).
        since: when it took the run (ISO 8601, UTC; empty when unknown).
    """

    pid: int
    host: str
    command: str = ""
    since: str = ""

    def describe(self) -> str:
        """``process 123 on host (cnnlab train ..., since ...)``, on one line."""
        details = ", ".join(
            part for part in (self.command, self.since and f"since {self.since}") if part
        )
        details = " ".join(details.split())  # a command line may hold newlines
        return f"process {self.pid} on {self.host}" + (f" ({details})" if details else "")

    @classmethod
    def of_this_process(cls) -> Holder:
        command = " ".join(shlex.quote(a) for a in sys.argv) if sys.argv else ""
        command = command.replace("\n", " ")[:300]
        since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(os.getpid(), socket.gethostname(), command, since)


class RunLock:
    """The exclusive lock of the run directory ``run_dir`` (created if missing).

    Example:
        >>> with RunLock(Path("runs/a")).held():  # doctest: +SKIP
        ...     train()
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: float = 0.0) -> None:
        """Take the lock, waiting up to ``wait`` seconds for its holder to let go.

        Raises:
            RunBusyError: another process holds the run (named in the message).
        """
        deadline = time.monotonic() + wait
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = holder_of(self.path)
                os.close(fd)
                if time.monotonic() < deadline:
                    time.sleep(POLL_SECONDS)
                    continue
                raise RunBusyError(busy_message(self.run_dir, holder)) from None
            if _same_file(fd, self.path):  # not a lock file a failed start just removed
                break
            os.close(fd)
        self._fd = fd
        record = json.dumps(Holder.of_this_process().__dict__).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)

    def release(self) -> None:
        """Let go of the lock (the file stays, empty: removing it could race a new holder)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the last descriptor releases the flock
        self._fd = None

    def remove(self) -> None:
        """Delete the lock file while still holding it (a run folder being cleaned up)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @contextlib.contextmanager
    def held(self, wait: float = 0.0) -> Iterator[RunLock]:
        self.acquire(wait)
        try:
            yield self
        finally:
            self.release()


def _is_orphan(path: Path) -> bool:
    """A temporary file of :mod:`cnnlab.fileio`'s atomic writes (``.NAME.XXXX.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file()


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = path.stat()
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def busy_message(run_dir: Path, holder: Holder | None) -> str:
    who = holder.describe() if holder is not None else "another process"
    return (
        f"expected a run folder no other process is using, received {run_dir}, which {who} "
        "holds (wait for it to finish or stop it; a killed process never holds a run)"
    )


def holder_of(lock_path: Path) -> Holder | None:
    """The live process holding ``lock_path``'s flock, or None when it cannot be named
    (the holder is between taking the lock and writing its record, or on another host).

    The record in the file is believed only when the kernel names the same pid
    (``/proc/locks``), or, without ``/proc/locks``, when that pid runs on this host.
    """
    try:
        stat = lock_path.stat()
    except FileNotFoundError:
        return None
    kernel_pid = _flock_owner(stat.st_dev, stat.st_ino)
    host = socket.gethostname()
    for _ in range(20):  # the holder writes its record right after it took the lock
        record = _read_record(lock_path)
        if record is not None:
            if kernel_pid is not None and record.pid == kernel_pid:
                return record
            if kernel_pid is None and record.host == host and process_alive(record.pid):
                return record
        time.sleep(POLL_SECONDS / 5)
    if kernel_pid is not None:
        return Holder(kernel_pid, host, _command_of(kernel_pid))
    return None


def _read_record(lock_path: Path) -> Holder | None:
    try:
        data = json.loads(lock_path.read_text())
        return Holder(int(data["pid"]), str(data["host"]), str(data["command"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _flock_owner(dev: int, ino: int) -> int | None:
    """The pid ``/proc/locks`` gives for the FLOCK on file (dev, ino); None if unknown."""
    wanted = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 12345 00:2a:67890 0 EOF" ("->" marks waiters)
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[4:6] and parts[5] == wanted:
            with contextlib.suppress(ValueError):
                return int(parts[4])
    return None


def _command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:300]


def parent_holds(run_dir: Path) -> bool:
    """True when this process's parent holds ``run_dir``'s lock: a worker started by the
    ``--nproc`` launcher (its elastic agent runs in the launcher), which owns the run."""
    lock = Path(run_dir) / LOCK_FILE
    try:
        stat = lock.stat()
    except FileNotFoundError:
        return False
    owner = _flock_owner(stat.st_dev, stat.st_ino)
    if owner is None:
        record = _read_record(lock)
        owner = record.pid if record is not None and record.host == socket.gethostname() else None
    return owner is not None and owner == os.getppid()


class RunOwnership:
    """The run directory a training command works on, owned for the command's life.

    ``claim_new`` takes a folder for a new run (created if missing, must be empty), ``claim``
    an existing run. Used as a context manager: on an error before the run wrote its
    ``config.json``, everything the claim created is removed again (the lock file, and the
    folders it made), so no failed command leaves an empty ``--out`` folder behind.

    Args:
        run_dir: the run folder.
        inherited: the ``--nproc`` launcher, this process's parent, owns the run: go on
            without the lock.
    """

    def __init__(self, run_dir: Path, *, config_file: str) -> None:
        self.run_dir = Path(run_dir)
        self.lock = RunLock(self.run_dir)
        self.config_file = config_file
        self.created: list[Path] = []  # folders this claim made, outermost first

    def claim_new(self, wait: float = 0.0) -> RunOwnership:
        """Take ``run_dir`` for a new run.

        Raises:
            ConfigError: a file at ``run_dir``, or a folder that is not empty.
            RunBusyError: another process holds it.
        """
        path = self.run_dir
        if path.exists() and not path.is_dir():
            raise ConfigError(f"expected a folder for the run, received a file at --out {path}")
        missing = [p for p in (path, *path.parents) if not p.exists()]
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"expected a run folder that can be created, received --out {path} ({exc.strerror})"
            ) from None
        self.created = [p for p in reversed(missing) if p.is_dir()]
        self._lock_or_inherit(wait)
        content = [p for p in path.iterdir() if p.name != LOCK_FILE and not _is_orphan(p)]
        if content:
            self.created = []  # never remove what was there before
            what = "holds a run" if (path / self.config_file).exists() else "is not empty"
            self.__exit__(None, None, None)
            raise ConfigError(
                f"expected a new or empty run folder, received --out {path}, which {what} "
                f"(use --resume {path} to continue it, or another --out)"
            )
        return self

    def claim(self, wait: float = 0.0) -> RunOwnership:
        """Take the existing run at ``run_dir`` (nothing is ever removed on an error).

        Raises:
            RunBusyError: another process holds it.
        """
        self.created = []
        self._lock_or_inherit(wait)
        return self

    def _lock_or_inherit(self, wait: float) -> None:
        if wait > 0 and parent_holds(self.run_dir):
            return  # the launcher holds it for good: a restarted worker need not wait
        try:
            self.lock.acquire(wait)
        except RunBusyError:
            if not parent_holds(self.run_dir):
                self._remove_created()
                raise
            return
        for orphan in filter(_is_orphan, self.run_dir.iterdir()):
            orphan.unlink(missing_ok=True)  # a killed writer's; no one else writes here now

    def __enter__(self) -> RunOwnership:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            started = (self.run_dir / self.config_file).exists()
            if exc_type is not None and self.lock.locked and not started:
                self.lock.remove()
                self._remove_created()
        finally:
            self.lock.release()

    def _remove_created(self) -> None:
        for folder in reversed(self.created):  # innermost first; only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        self.created = []
