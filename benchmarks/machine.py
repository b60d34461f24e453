"""What every benchmark records about the machine it ran on (imported by the scripts beside it,
which run as ``python benchmarks/NAME.py``, so this folder is on their path)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model as ``lscpu`` names it (``/proc/cpuinfo``), or the architecture elsewhere."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else ():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()
