"""What every benchmark records about the machine it ran on, and how it times and summarises
(imported by the scripts beside it, which run as ``python benchmarks/NAME.py``, so this folder
is on their path). Standard library only: a script that only times commands imports no torch."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path


def cpu_name() -> str:
    """The CPU model as ``lscpu`` names it (``/proc/cpuinfo``), or the architecture elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else ():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def load_average() -> float:
    """The 1-minute load average, rounded to 2 decimals (other processes' share of the CPU)."""
    return round(os.getloadavg()[0], 2)


def benchmark_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser described by the first line of the script's docstring ``doc``."""
    return argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])


def add_seeds_argument(parser: argparse.ArgumentParser, default: Sequence[int]) -> None:
    """``--seeds S [S ...]``: the seeds a benchmark repeats its runs with."""
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(default),
        help=f"seeds to repeat the runs with (default: {' '.join(map(str, default))})",
    )


def cnnlab_command(*args: str) -> list[str]:
    """``python -m cnnlab ARGS``, with this interpreter (and so this environment)."""
    return [sys.executable, "-m", "cnnlab", *args]


def timed_run(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a whole command, output captured as text; ``(wall seconds, finished process)``.

    Raises:
        subprocess.CalledProcessError: with ``check``, when the command fails.
        subprocess.TimeoutExpired: when it runs longer than ``timeout`` seconds.
    """
    start = time.perf_counter()
    done = subprocess.run(
        list(argv), env=env, capture_output=True, text=True, timeout=timeout, check=check
    )
    return time.perf_counter() - start, done


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that were measured (``None`` is a run that failed), or ``None``
    when none was."""
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing (or zero below)."""
    return numerator / denominator if numerator is not None and denominator else None
