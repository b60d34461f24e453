"""The NumPy engine's process settings: one BLAS thread unless OPENBLAS_NUM_THREADS asks for
more; keep_freed_memory makes repeated large allocations stop page-faulting (glibc's mallopt),
and keep_all_freed_memory does it for blocks of any size."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from cnnlab.bridge.runtime import (
    engine_blas_threads,
    get_blas_threads,
    keep_freed_memory,
    set_blas_threads,
)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, 1), ("3", 3), ("1", 1), ("0", 1), ("many", 1), ("", 1)]
)
def test_engine_threads_follow_only_a_valid_request(monkeypatch, value, expected) -> None:
    if value is None:
        monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", value)
    assert engine_blas_threads() == expected


def test_set_blas_threads_changes_openblas_and_returns_the_previous_count() -> None:
    start = get_blas_threads()
    assert start is not None, "NumPy here is built on OpenBLAS: the setter must find it"
    try:
        assert set_blas_threads(1) == start
        assert get_blas_threads() == 1
        assert set_blas_threads(2) == 1
        assert get_blas_threads() == 2
    finally:
        set_blas_threads(start)


SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from cnnlab.bridge.runtime import keep_freed_memory

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


#: How much of a freed 72 MB block the process gives back (MB of resident memory).
GIVEN_BACK = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from cnnlab.bridge.runtime import keep_all_freed_memory

    if sys.argv[1] == "keep-all":
        assert keep_all_freed_memory()

    def resident_mb():
        return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    block = np.ones(18_000_000, np.float32)  # 72 MB, touched
    held = resident_mb()
    del block
    print(held - resident_mb())
    """
)


def _given_back_mb(mode: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", GIVEN_BACK, mode], capture_output=True, text=True, check=True
    )
    return float(result.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_blocks_are_reused_instead_of_page_faulting_again() -> None:
    assert keep_freed_memory()  # glibc accepts both thresholds
    default, kept = _page_faults("default"), _page_faults("keep")
    # By default glibc maps, unmaps and trims some of the 10 MB blocks each step: 41,335 fresh
    # pages in 20 steps on one machine, 31,631 on another (its thresholds adapt to the pattern).
    assert default > 20 * 500  # at least 2 MB of fresh pages a step
    assert kept < min(default / 10, 20 * 50)  # almost none once freed blocks are kept


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_blocks_of_any_size_are_kept_once_all_freed_memory_is_kept() -> None:
    """A freed 72 MB block (above the 64 MB keep_freed_memory serves from the heap) goes back
    to the system by default and stays with keep_all_freed_memory, to be reused without
    touching fresh pages."""
    assert _given_back_mb("default") > 60
    assert abs(_given_back_mb("keep-all")) < 5
