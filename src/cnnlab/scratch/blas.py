"""How many threads NumPy's BLAS (OpenBLAS) uses for the engine's matrix products.

OpenBLAS starts one thread per core. The NumPy engine's products are small (LeNet-5's largest
is ``6 x 25`` by ``25 x 100,352``), and on a busy machine spinning BLAS threads cost more than
they give (measured on the 2-core machine under load: 25 ms per LeNet-5 step with one thread,
190 ms with two), so the training engine matches BLAS to torch's intra-op thread count, which
users already control (``torch.set_num_threads``, ``OMP_NUM_THREADS``).

Uses the library's own ``openblas_set_num_threads`` through ctypes (no extra dependency); where
NumPy is not built on OpenBLAS, or the platform has no ``/proc/self/maps``, it does nothing.
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import numpy as np  # noqa: F401  (loads NumPy's BLAS, which this module then finds)

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
