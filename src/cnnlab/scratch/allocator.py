"""Keep freed memory in the process, so that every training step does not page-fault afresh.

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
"""

from __future__ import annotations

import ctypes

#: glibc's ``mallopt`` parameter numbers (``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 64 * 2**20
TRIM_THRESHOLD_BYTES = 512 * 2**20


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (see the module docstring).

    Returns:
        Whether the allocator accepted both settings (``False``: not glibc, nothing changed).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
