"""keep_freed_memory: repeated large allocations stop page-faulting (glibc's mallopt)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cnnlab.scratch.allocator import keep_freed_memory

SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from cnnlab.scratch.allocator import keep_freed_memory

    if sys.argv[1] == "keep":
        assert keep_freed_memory()

    def step():  # what a training step does: allocate, touch and free large arrays
        arrays = [np.ones(2_500_000, np.float32) for _ in range(4)]  # 4 x 10 MB
        del arrays

    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _page_faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_blocks_are_reused_instead_of_page_faulting_again() -> None:
    assert keep_freed_memory()  # glibc accepts both thresholds
    default, kept = _page_faults("default"), _page_faults("keep")
    assert default > 20 * 2_000  # each 10 MB block is ~2,500 fresh pages per step by default
    assert kept < default / 10
