"""im2col / col2im: turn convolution into one matrix product (seed 004's speed-up).

Layout: the padded input is batch-last, ``(C, Hp, Wp, N)`` (see
:mod:`cnnlab.scratch.functional.layout`), and the columns are ``(C, kh, kw, OH, OW, N)``, so
that reshaped to ``(C*kh*kw, OH*OW*N)`` the whole batch is a single BLAS matrix product with
the ``(O, C*kh*kw)`` filter matrix, whose ``(O, OH*OW*N)`` result is already the batch-last
output. The only Python loop is over the ``kh * kw`` kernel offsets, each a strided slice copy
with contiguous inner runs of ``OW * N`` numbers (for stride 1).
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional._utils import Pair, window_slices


def im2col(
    xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_size: Pair
) -> np.ndarray:
    """Gather every receptive field of a padded batch-last input into columns.

    Args:
        xp: padded input, batch-last.
        kernel: ``(kh, kw)``.
        stride: ``(sh, sw)``.
        dilation: ``(dh, dw)``.
        out_size: ``(OH, OW)``.

    Returns:
        ``cols`` with ``cols[c, i, j, oh, ow, n] = xp[c, oh*sh + i*dh, ow*sw + j*dw, n]``.

    Shape:
        ``(C, Hp, Wp, N) -> (C, kh, kw, OH, OW, N)``.
    """
    c, n = xp.shape[0], xp.shape[3]
    cols = np.empty((c, kernel[0], kernel[1], *out_size, n), dtype=xp.dtype)
    for i, j, window in window_slices(kernel, stride, dilation, out_size, batch_last=True):
        cols[:, i, j] = xp[window]
    return cols


def col2im(
    cols: np.ndarray, padded_size: Pair, kernel: Pair, stride: Pair, dilation: Pair
) -> np.ndarray:
    """Scatter-add columns back onto the padded batch-last grid (the adjoint of :func:`im2col`).

    Non-overlapping windows (stride = kernel, no dilation) are a pure reshape; otherwise each of
    the ``kh * kw`` offsets adds its ``(OH, OW, N)`` slab onto a strided slice (no ``np.add.at``).

    Shape:
        ``(C, kh, kw, OH, OW, N) -> (C, Hp, Wp, N)``.
    """
    c, kh, kw, oh, ow, n = cols.shape
    out = np.zeros((c, *padded_size, n), dtype=cols.dtype)
    if stride == kernel and dilation == (1, 1):
        # (C, kh, kw, OH, OW, N) -> (C, OH, kh, OW, kw, N) -> (C, OH*kh, OW*kw, N)
        out[:, : oh * kh, : ow * kw] = cols.transpose(0, 3, 1, 4, 2, 5).reshape(
            c, oh * kh, ow * kw, n
        )
        return out
    for i, j, window in window_slices(kernel, stride, dilation, (oh, ow), batch_last=True):
        out[window] += cols[:, i, j]
    return out
