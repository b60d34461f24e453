"""The process settings the NumPy training engine runs best with: BLAS threads, torch's
threads and the allocator (:class:`cnnlab.bridge.engine.NumpyEngine` applies the first and the
last when it starts, and keeps torch on one thread while it computes).

BLAS threads
------------

OpenBLAS starts one thread per core. The NumPy engine's products are small and many (LeNet-5's
largest is ``16 x 150`` by ``150 x 12,800``, and the engine computes the flattest ones in
4,096-column slices), so a second thread has little to do, and each product makes the threads
meet. Measured on the 2-core benchmark machine (LeNet-5, batch 128): idle, two threads train
only 11% faster than one (10,682 against 9,609 images/s) and, spinning between products, slow
torch in the same process by 18%; with another process busy on the second core a step took
31 ms with one thread and 232 ms with two, as each meeting waits for the busy core.

So the training engine uses :func:`engine_blas_threads`: one thread, unless the user asked for
more by setting ``OPENBLAS_NUM_THREADS`` (worth it for large models on an otherwise idle
machine). :func:`set_blas_threads` uses the library's own ``openblas_set_num_threads`` through
ctypes (no extra dependency); where NumPy is not built on OpenBLAS, or the platform has no
``/proc/self/maps``, it does nothing.

Torch's threads
---------------

The engine computes in NumPy, but torch still runs small operations around each step: the
labels, the views of the batch, the inference batches' preprocessing, the logits' tensors. With
two intra-op threads, each such operation wakes torch's OpenMP workers, which then spin for a
while (libgomp's default wait policy on an idle machine, see :mod:`cnnlab.threads`) on the very
cores the engine's two shard threads need. Measured on the 2-core benchmark machine (LeNet-5,
the 10,000 test digits): the engine's inference ran at 9,010 images/s with torch's threads
spinning and 13,827 on one shard thread (``benchmarks/numpy_vs_torch.py``, 2026-11-30). So
:func:`torch_on_one_thread` holds torch at one thread for the length of each engine call; it
costs half a microsecond and leaves the count as it found it.

Allocator
---------

A NumPy training step allocates and frees the same large arrays every time (LeNet-5 at batch
128: a 10 MB im2col matrix, several 2-8 MB activations and gradients). glibc's ``malloc`` serves
blocks above ``M_MMAP_THRESHOLD`` (128 KB at start, raised adaptively) with fresh ``mmap``
pages and trims the heap above ``M_TRIM_THRESHOLD``, so each step touched about 12 MB of new
pages: some 3,000 page faults, almost a third of the step's time on the 2-core benchmark machine
(17.4 ms per step, 12.2 ms with the thresholds below; ``docs/numpy-engine.md``).

:func:`keep_freed_memory` raises both thresholds through glibc's own ``mallopt`` (ctypes, no
dependency), so blocks up to 64 MB come from the heap and freed ones are reused. It is
process-wide and only changes *where* memory comes from: peak memory is what the program holds
at its peak either way (blocks above 64 MB, e.g. a VGG layer's columns, are still mapped and
unmapped). Where ``mallopt`` does not exist (macOS, musl), it does nothing.

:func:`keep_all_freed_memory` goes further, for a long-lived process that allocates and frees
blocks of hundreds of MB over and over (the test workers, one zoo network after another):
every block comes from the heap and nothing is given back. On the cloud machines cnnlab is
tested on, the host backs a page only when the guest first touches it and takes free pages
back a few seconds after they are freed, so touching a fresh GiB costs 3.0-8.5 s against
0.1 s for a GiB the process reuses (measured 2026-12-01 on the 2-core benchmark machine:
``np.ones(2**27)`` four times, 4 s apart). The process then holds the most it ever held until
it exits.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np  # noqa: F401  (loads NumPy's BLAS, which this module then finds)
import torch

_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GETTERS = tuple(name.replace("set_", "get_") for name in _SETTERS)


@cache
def _openblas() -> ctypes.CDLL | None:
    """The OpenBLAS library loaded in this process, if any."""
    maps = Path("/proc/self/maps")
    if not maps.is_file():
        return None
    paths = {
        line.split()[-1]
        for line in maps.read_text().splitlines()
        if "openblas" in line.lower() and "/" in line
    }
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if any(hasattr(lib, name) for name in _SETTERS):
            return lib
    return None


def get_blas_threads() -> int | None:
    """OpenBLAS's thread count, or ``None`` when it cannot be found."""
    lib = _openblas()
    for name in _GETTERS if lib is not None else ():
        if hasattr(lib, name):
            return int(getattr(lib, name)())
    return None


def set_blas_threads(threads: int) -> int | None:
    """Set OpenBLAS's thread count (at least 1); returns the previous one (``None``: no
    OpenBLAS found, nothing changed)."""
    lib = _openblas()
    previous = get_blas_threads()
    for name in _SETTERS if lib is not None else ():
        if hasattr(lib, name):
            getattr(lib, name)(max(1, int(threads)))
            break
    return previous


def engine_blas_threads() -> int:
    """The NumPy engine's BLAS threads: ``OPENBLAS_NUM_THREADS`` when set to a positive
    integer, else 1 (see the module docstring)."""
    requested = os.environ.get("OPENBLAS_NUM_THREADS", "")
    return int(requested) if requested.isdigit() and int(requested) > 0 else 1


@contextmanager
def torch_on_one_thread() -> Iterator[None]:
    """Torch's intra-op threads at one inside the block, as many as before after it (see the
    module docstring)."""
    previous = torch.get_num_threads()
    if previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# ---- allocator ------------------------------------------------------------------------------
#: glibc's ``mallopt`` parameter numbers (``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

MMAP_THRESHOLD_BYTES = 64 * 2**20
TRIM_THRESHOLD_BYTES = 512 * 2**20


_keeping_all = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (see the module docstring); after
    :func:`keep_all_freed_memory` there is nothing left to raise.

    Returns:
        Whether the allocator accepted both settings (``False``: not glibc, nothing changed).
    """
    if _keeping_all:
        return True
    return _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) and _mallopt(
        M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES
    )


def keep_all_freed_memory() -> bool:
    """Every block from glibc's heap (no ``mmap``), and the heap never trimmed (see the module
    docstring). A thread whose block does not fit its arena's heap still gets it mapped.

    Returns:
        Whether the allocator accepted both settings (``False``: not glibc, nothing changed).
    """
    global _keeping_all
    # -1: no trimming at all (the largest positive threshold, 2 GiB, still gave back the top
    # of the heap after a float64 VGG: 77 s against 30 s for five zoo tests in a row)
    _keeping_all = _mallopt(M_MMAP_MAX, 0) and _mallopt(M_TRIM_THRESHOLD, -1)
    return _keeping_all


def _mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt``; False where there is none (macOS, musl) or it refuses the value."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(parameter, value))
