"""im2col / col2im: turn convolution into one matrix product (seed 004's speed-up).

Layout: the padded input is channel-major, ``(C, N, Hp, Wp)``, and the columns are
``(C, kh, kw, N, OH, OW)``, so that reshaped to ``(C*kh*kw, N*OH*OW)`` the whole batch is a
single BLAS matrix product with the ``(O, C*kh*kw)`` filter matrix, with no per-sample loop.
The only Python loop is over the ``kh * kw`` kernel offsets, each a strided slice copy.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional._utils import Pair, window_slices


def im2col(
    xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_size: Pair
) -> np.ndarray:
    """Gather every receptive field of a padded input into columns.

    Args:
        xp: padded input, channel-major.
        kernel: ``(kh, kw)``.
        stride: ``(sh, sw)``.
        dilation: ``(dh, dw)``.
        out_size: ``(OH, OW)``.

    Returns:
        ``cols`` with ``cols[c, i, j, n, oh, ow] = xp[c, n, oh*sh + i*dh, ow*sw + j*dw]``.

    Shape:
        ``(C, N, Hp, Wp) -> (C, kh, kw, N, OH, OW)``.
    """
    c, n = xp.shape[:2]
    cols = np.empty((c, kernel[0], kernel[1], n, *out_size), dtype=xp.dtype)
    for i, j, (hs, ws) in window_slices(kernel, stride, dilation, out_size):
        cols[:, i, j] = xp[:, :, hs, ws]
    return cols


def col2im(
    cols: np.ndarray, padded_size: Pair, kernel: Pair, stride: Pair, dilation: Pair
) -> np.ndarray:
    """Scatter-add columns back onto the padded input grid (the adjoint of :func:`im2col`).

    Non-overlapping windows (stride = kernel, no dilation) are a pure reshape; otherwise each of
    the ``kh * kw`` offsets adds its ``(OH, OW)`` slab onto a strided slice (no ``np.add.at``).

    Shape:
        ``(C, kh, kw, N, OH, OW) -> (C, N, Hp, Wp)``.
    """
    c, kh, kw, n, oh, ow = cols.shape
    out = np.zeros((c, n, *padded_size), dtype=cols.dtype)
    if stride == kernel and dilation == (1, 1):
        # (C, kh, kw, N, OH, OW) -> (C, N, OH, kh, OW, kw) -> (C, N, OH*kh, OW*kw)
        out[:, :, : oh * kh, : ow * kw] = cols.transpose(0, 3, 4, 1, 5, 2).reshape(
            c, n, oh * kh, ow * kw
        )
        return out
    for i, j, (hs, ws) in window_slices(kernel, stride, dilation, (oh, ow)):
        out[:, :, hs, ws] += cols[:, i, j]
    return out
