"""How many threads torch (and the NumPy engine) compute with, and how they wait.

Two things make a run slow on a machine whose cores are not all free:

* **Waiting threads that spin.** torch's intra-op threads are OpenMP threads (GNU libgomp on
  Linux); by default a thread that finishes its part of a parallel region spins for a while
  before it sleeps. On an idle machine that is what makes two threads pay: a LeNet-5 step
  took 18 ms with spinning threads and 40 ms with sleeping ones, as slow as one thread
  (``benchmarks/wait_policy.py``, BENCHMARKS.md issue 16). But when another process, even a
  niced one, keeps a core busy, the spinning threads fight it for the core and the thread that
  still has work is descheduled for whole time slices: a step took 1.5 s instead of 0.07 s on
  the crowded machine. Threads that go to sleep at once (``OMP_WAIT_POLICY=PASSIVE``; Intel
  OpenMP: ``KMP_BLOCKTIME=0``) are woken by the kernel the moment there is work.
  :func:`choose_waiting` therefore measures, for :data:`WAIT_SAMPLE_SECONDS` before torch is
  imported, whether other processes keep a core busy, and sets both only then (never when the
  user set them); OpenMP reads them once, when torch is imported, so the ``cnnlab`` command
  calls it before any command runs (a Python program that imports torch before cnnlab can set
  them itself).
* **More threads than free cores.** :func:`choose_threads` counts the cores this process may
  run on (``os.sched_getaffinity``) and, from ``/proc/stat``, how many of them other processes
  kept busy since a :func:`cpu_snapshot` taken when the run started, and uses the free ones
  (at least one). ``--threads N`` (the CLI), ``threads=N`` (``cnnlab.fit``) or
  ``OMP_NUM_THREADS`` choose by hand; nothing is measured then.

The thread count changes torch's results in the last bits (its reductions split work per
thread), so a run with a chosen count is reproducible on the same machine under the same load;
pass ``--threads N`` for bitwise reproducible runs whatever the load. The NumPy engine's
results do not depend on it (:mod:`cnnlab.scratch.parallel`).

stdlib only at import: the CLI imports this before torch.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cnnlab.errors import ConfigError, expected

#: OpenMP settings for threads that sleep as soon as they wait (see the module docstring).
PASSIVE_WAITING = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
#: Environment variables that set the thread count by hand (read by torch at import).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: Shortest interval :func:`choose_waiting` measures other processes' load over.
WAIT_SAMPLE_SECONDS = 0.1
#: Other processes' load (cores, niced ones included) from which waiting threads sleep.
WAIT_BUSY_SHARE = 0.25
#: Shortest interval :func:`choose_threads` measures other processes' load over.
MIN_SAMPLE_SECONDS = 0.25
#: A core counts as taken when other processes kept it busy this much of the time or more.
BUSY_SHARE = 0.5


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def choose_waiting(since: CpuSnapshot | None) -> str:
    """Make OpenMP threads sleep while they wait if other processes (niced ones included)
    kept :data:`WAIT_BUSY_SHARE` of a core or more busy since ``since`` (waits until
    :data:`WAIT_SAMPLE_SECONDS` have passed); otherwise leave OpenMP's spinning.

    Returns:
        What was decided: ``"user"`` (the environment sets the policy already), ``"too late"``
        (torch is loaded: OpenMP has read its settings), ``"passive"`` (set) or
        ``"spinning"`` (left as it is).
    """
    if any(name in os.environ for name in PASSIVE_WAITING):
        return "user"
    if "torch" in sys.modules:
        return "too late"
    busy = busy_since(since, WAIT_SAMPLE_SECONDS, niced=True)
    if busy is None or busy < WAIT_BUSY_SHARE:
        return "spinning"
    os.environ.update(PASSIVE_WAITING)
    return "passive"


def check_threads(threads: object) -> int:
    """``threads`` as a positive int, or a :class:`ConfigError`."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(expected("a positive whole number of threads", threads=threads))
    return threads


def request_threads(threads: int) -> None:
    """Use ``threads`` threads in this process and the processes it starts (``--threads``):
    sets ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``, and torch's count when torch is loaded."""
    threads = check_threads(threads)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(threads)


@contextmanager
def thread_settings_restored() -> Iterator[None]:
    """Give the process back, on leaving, the thread settings :func:`choose_waiting`
    and :func:`request_threads` change: the environment variables (``OMP_NUM_THREADS``, ...)
    and, when torch was loaded on entering, its thread count (``cnnlab.cli.main`` called in a
    Python program leaves it as it found it)."""
    names = (*THREAD_VARIABLES, *PASSIVE_WAITING)
    saved = {name: os.environ.get(name) for name in names}
    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if torch_threads is not None:
            sys.modules["torch"].set_num_threads(torch_threads)


def requested_threads() -> int | None:
    """The count ``OMP_NUM_THREADS`` asks for (``--threads`` sets it), or None."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time counters at one moment (``/proc/stat``'s ticks, this process's seconds).

    Attributes:
        at: ``time.monotonic()`` seconds.
        busy_ticks: busy time of all cores, in clock ticks (niced processes' time counts only
            when this process is niced too: otherwise they yield to it).
        own_seconds: CPU seconds this process has used (all its threads).
        niced_ticks: niced processes' busy time not counted in ``busy_ticks``.
    """

    at: float
    busy_ticks: int
    own_seconds: float
    niced_ticks: int = 0


def cpu_snapshot() -> CpuSnapshot | None:
    """The counters now, or None where there is no ``/proc/stat``."""
    stat = Path("/proc/stat")
    try:
        fields = stat.read_text().splitlines()[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal ...
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    niced_counted = os.getpriority(0, 0) > 0
    busy = user + system + irq + softirq + steal + (nice if niced_counted else 0)
    own = os.times()
    return CpuSnapshot(time.monotonic(), busy, own.user + own.system, 0 if niced_counted else nice)


def busy_elsewhere(start: CpuSnapshot, end: CpuSnapshot, niced: bool = False) -> float:
    """Cores other processes kept busy on average between two snapshots (with ``niced``, the
    niced processes that yield to this one as well)."""
    seconds = end.at - start.at
    if seconds <= 0:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    busy_ticks = end.busy_ticks - start.busy_ticks
    if niced:
        busy_ticks += end.niced_ticks - start.niced_ticks
    busy = busy_ticks / ticks - (end.own_seconds - start.own_seconds)
    return max(0.0, busy / seconds)


def busy_since(since: CpuSnapshot | None, min_seconds: float, niced: bool = False) -> float | None:
    """:func:`busy_elsewhere` from ``since`` until now, once at least ``min_seconds`` have
    passed (sleeps the rest); None when not measurable (no ``/proc/stat``)."""
    if since is None:
        return None
    time.sleep(max(0.0, min_seconds - (time.monotonic() - since.at)))
    now = cpu_snapshot()
    return None if now is None else busy_elsewhere(since, now, niced=niced)


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count a run uses and why.

    Attributes:
        threads: the count.
        cores: cores this process may run on.
        busy: cores other processes kept busy while the run started (None: by hand, or not
            measurable).
    """

    threads: int
    cores: int
    busy: float | None

    def describe(self) -> str:
        """One line for the run's log."""
        if self.busy is None:
            return f"threads: {self.threads} of {self.cores} cores"
        return (
            f"threads: {self.threads} of {self.cores} cores (other processes kept "
            f"{self.busy:.1f} busy; --threads N to choose)"
        )


def choose_threads(since: CpuSnapshot | None) -> ThreadChoice:
    """As many threads as cores other processes leave free, measured since ``since`` (waits
    until :data:`MIN_SAMPLE_SECONDS` have passed); all cores when not measurable."""
    cores = cpu_cores()
    busy = busy_since(since, MIN_SAMPLE_SECONDS)
    if busy is None:
        return ThreadChoice(cores, cores, None)
    busy = min(float(cores), busy)
    free = int(cores - busy + (1 - BUSY_SHARE))  # a core busy less than half the time is free
    return ThreadChoice(max(1, min(cores, free)), cores, round(busy, 2))
