"""The batch-last layout ``(C, H, W, N)``: how the engine keeps image batches between layers.

PyTorch's (and every public scratch op's) layout is batch-first, ``(N, C, H, W)``. Inside a
network the graph executor keeps 4-D values batch-last instead, because every spatial op of the
engine is a loop over kernel offsets of strided slices, and the cost of a NumPy slice copy is
set by the length of its contiguous inner runs:

* im2col/col2im and pooling slice ``x[:, rows, cols, :]``; batch-last, each slice has inner runs
  of ``OW * N`` contiguous numbers (``10 * 128`` for LeNet-5's C3), batch-first only ``OW``.
* the convolution's product ``W @ cols`` is ``(O, OH*OW*N)``, which *is* the batch-last output,
  so no transposing copy is needed before or after a convolution.

The ops take ``batch_last=True`` to read and write this layout; only the graph's edges convert
(:func:`to_batch_last` at the input, :func:`to_batch_first` before ``Flatten`` and other
batch-first ops). Axis ``k`` of a batch-first array is axis ``BATCH_LAST_AXIS[k]`` of its
batch-last twin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

#: batch-first axis (N, C, H, W) -> its position in the batch-last layout (C, H, W, N).
BATCH_LAST_AXIS = (3, 0, 1, 2)


def _check_4d(x: np.ndarray, layout: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"expected a 4-d {layout} array, received shape {x.shape}")


def to_batch_last(x: np.ndarray) -> np.ndarray:
    """A contiguous batch-last copy.

    Shape:
        ``(N, C, H, W) -> (C, H, W, N)``.
    """
    _check_4d(x, "(N, C, H, W)")
    return np.ascontiguousarray(x.transpose(1, 2, 3, 0))


def to_batch_first(x: np.ndarray) -> np.ndarray:
    """A contiguous batch-first copy (the inverse of :func:`to_batch_last`).

    Shape:
        ``(C, H, W, N) -> (N, C, H, W)``.
    """
    _check_4d(x, "(C, H, W, N)")
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2))


def batch_last_axis(axis: int) -> int:
    """Where a batch-first axis (negative allowed) lives in the batch-last layout."""
    if not -4 <= axis < 4:
        raise ValueError(f"expected an axis of a 4-d array, received axis={axis}")
    return BATCH_LAST_AXIS[axis % 4]


def batch_last_order(per_axis: Sequence[T]) -> tuple[T, ...]:
    """Per-axis entries of a batch-first 4-d array (an index, padding sizes), one per axis
    ``(N, C, H, W)``, reordered for its batch-last twin ``(C, H, W, N)``."""
    if len(per_axis) != 4:
        raise ValueError(f"expected one entry per axis of a 4-d array, received {per_axis!r}")
    moved: list[T] = list(per_axis)
    for axis, entry in enumerate(per_axis):
        moved[BATCH_LAST_AXIS[axis]] = entry
    return tuple(moved)
