"""Max, average and adaptive average pooling with PyTorch's exact window rules.

Max and average pooling loop over the ``kh * kw`` kernel offsets (strided slices of the padded
input), never over pixels. Max pooling pads with ``-inf`` and saves, per output, which kernel
offset won (the first maximum in row-major window order, as PyTorch); its backward routes the
error through those saved positions. Average pooling spreads the error evenly over the window,
divided by PyTorch's divisor (``count_include_pad``, ``ceil_mode``, ``divisor_override``).
Adaptive average pooling is separable, so it is two small matrix products.

Every op also takes ``batch_last=True`` for the graph executor's ``(C, H, W, N)`` layout
(:mod:`cnnlab.scratch.functional.layout`), where each window slice has contiguous runs of ``N``
numbers instead of single ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.scratch.functional._utils import (
    Pair,
    WindowGeometry,
    as_pair,
    check_ndim,
    pad2d,
    pool_output_size,
    spatial_shape,
    unpad2d,
    window_slices,
    with_spatial,
)
from cnnlab.scratch.functional.layout import to_batch_first
from cnnlab.shapes import span


@dataclass(frozen=True)
class PoolGeometry(WindowGeometry):
    """Window sizes of a pooling op: ``padding`` is its (symmetric) argument, ``pads`` add the
    extra bottom/right of ``ceil_mode``."""

    padding: Pair

    @property
    def overlapping(self) -> bool:
        """Whether an input pixel can fall in more than one window."""
        return any(
            s < span(k, d) for k, s, d in zip(self.kernel, self.stride, self.dilation, strict=True)
        )


def pool2d_geometry(
    in_size: Pair,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    ceil_mode: bool = False,
) -> PoolGeometry:
    """Validate pooling arguments as PyTorch does (stride defaults to the kernel size)."""
    kernel = as_pair(kernel_size, "kernel_size")
    stride_ = kernel if stride is None or stride == () else as_pair(stride, "stride")
    pad, dil = as_pair(padding, "padding"), as_pair(dilation, "dilation")
    out = tuple(
        pool_output_size(in_size[a], kernel[a], stride_[a], pad[a], dil[a], ceil_mode)
        for a in range(2)
    )
    # Extra bottom/right padding so that every (ceil-mode) window lies inside the padded map.
    extra = [
        max(0, (out[a] - 1) * stride_[a] + dil[a] * (kernel[a] - 1) + 1 - in_size[a] - 2 * pad[a])
        for a in range(2)
    ]
    pads = ((pad[0], pad[0] + extra[0]), (pad[1], pad[1] + extra[1]))
    return PoolGeometry(kernel, stride_, dil, in_size, (out[0], out[1]), pads, pad)


# --------------------------------------------------------------------------------- max pooling


@dataclass
class _WindowPoolCache:
    """What the backward pass of either window pool reads: the windows and the layout."""

    geometry: PoolGeometry
    batch_last: bool


@dataclass
class MaxPool2dCache(_WindowPoolCache):
    """Saved argmax: for each output, the index ``i * kw + j`` of the winning kernel offset."""

    argmax: np.ndarray | None  # None: the forward pass ran without gradients


def max_pool2d(
    x: np.ndarray,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    ceil_mode: bool = False,
    batch_last: bool = False,
    with_argmax: bool = True,
) -> tuple[np.ndarray, MaxPool2dCache]:
    """Max pooling with ``torch.nn.functional.max_pool2d`` semantics.

    Padding is ``-inf`` (it never wins); ties go to the first maximum in row-major window order,
    as in PyTorch. (Unlike PyTorch, a NaN is only propagated if it is the first element seen.)

    Args:
        x: input.
        kernel_size: window size.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit ``-inf`` padding on both sides, at most half the kernel.
        dilation: spacing between window elements.
        ceil_mode: round the output size up (the last window must start inside the input or
            the left padding).
        batch_last: ``x`` and the output are ``(C, H, W, N)``.
        with_argmax: save the argmax (``False`` for inference: no backward pass possible).

    Returns:
        The output and the cache (saved argmax) for :func:`max_pool2d_backward`.

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (or without ``N``; or ``(C, H, W, N) -> (C, OH, OW,
        N)`` with ``batch_last``), with ``OH = floor_or_ceil((H + 2p - d*(k-1) - 1) / s) + 1``.
    """
    _check_pool_input(x, "max_pool2d", batch_last)
    geo = pool2d_geometry(
        spatial_shape(x.shape, batch_last), kernel_size, stride, padding, dilation, ceil_mode
    )
    xp = pad2d(x, geo.pads, -np.inf, batch_last)
    slabs = [xp[window] for _, _, window in _windows(geo, batch_last)]
    out = slabs[0].copy()
    for slab in slabs[1:]:
        np.maximum(out, slab, out=out)
    if not with_argmax:
        return out, MaxPool2dCache(geo, batch_last, None)
    # First maximum in window order: argmax = ne_0 * (1 + ne_1 * (1 + ...)), ne_k = slab_k != max
    # (cheaper than argmax over a stacked copy or masked writes).
    index_type = np.uint8 if len(slabs) <= 256 else np.int32
    argmax = np.zeros(out.shape, dtype=index_type)
    for slab in reversed(slabs[:-1]):
        argmax += 1
        argmax *= np.not_equal(slab, out)
    return out, MaxPool2dCache(geo, batch_last, argmax)


def _check_pool_input(x: np.ndarray, name: str, batch_last: bool) -> None:
    if batch_last:
        check_ndim(x, 4, name, "(C, H, W, N)")
    else:
        check_ndim(x, (3, 4), name, "(N, C, H, W) or (C, H, W)")


def _windows(geo: PoolGeometry, batch_last: bool):
    """The pooling windows' indices (see :func:`window_slices`)."""
    return window_slices(geo.kernel, geo.stride, geo.dilation, geo.out_size, batch_last)


def _scatter_windows(grad_out: np.ndarray, cache: _WindowPoolCache, share) -> np.ndarray:
    """Add (or, for non-overlapping windows, write) ``share(k)`` onto window ``k`` of a zero
    padded map (of ``grad_out``'s dtype) and crop the padding: the backward pass of both pools.

    Shape:
        ``grad_out`` (pooled) -> the input's shape.
    """
    geo, batch_last = cache.geometry, cache.batch_last
    gxp = np.zeros(with_spatial(grad_out.shape, geo.padded_size, batch_last), dtype=grad_out.dtype)
    for k, (_, _, window) in enumerate(_windows(geo, batch_last)):
        if geo.overlapping:
            gxp[window] += share(k)
        else:  # each input pixel belongs to at most one window: plain assignment
            gxp[window] = share(k)
    return np.ascontiguousarray(unpad2d(gxp, geo.pads, geo.in_size, batch_last))


def max_pool2d_backward(grad_out: np.ndarray, cache: MaxPool2dCache) -> np.ndarray:
    """Route each output's error to the input position that won its window.

    Shape:
        ``(N, C, OH, OW) -> (N, C, H, W)`` (batch-last: ``(C, OH, OW, N) -> (C, H, W, N)``).
    """
    if cache.argmax is None:
        raise RuntimeError("max_pool2d_backward needs the argmax of a forward pass with gradients")
    routed = np.empty_like(grad_out)

    def share(k: int) -> np.ndarray:
        return np.multiply(grad_out, cache.argmax == k, out=routed)

    return _scatter_windows(grad_out, cache, share)


def max_pool2d_indices(cache: MaxPool2dCache) -> np.ndarray:
    """The saved argmax as PyTorch's ``return_indices``: flat ``h * W + w`` into each input map.

    Shape:
        ``(N, C, OH, OW)`` int64.
    """
    geo = cache.geometry
    kw = geo.kernel[1]
    argmax = to_batch_first(cache.argmax) if cache.batch_last else cache.argmax
    i, j = np.divmod(argmax.astype(np.int64), kw)
    oh = np.arange(geo.out_size[0])[:, None]
    ow = np.arange(geo.out_size[1])[None, :]
    h = oh * geo.stride[0] - geo.padding[0] + i * geo.dilation[0]
    w = ow * geo.stride[1] - geo.padding[1] + j * geo.dilation[1]
    return h * geo.in_size[1] + w


# ----------------------------------------------------------------------------- average pooling


def avg_pool_divisors(
    size: int, kernel: int, stride: int, pad: int, out: int, count_include_pad: bool
) -> np.ndarray:
    """PyTorch's per-axis window counts (``aten/src/ATen/native/cpu/AvgPoolKernel.cpp``).

    A window spans ``[o*s - p, min(o*s - p + k, size + p))``; with ``count_include_pad`` its
    size counts padding (but not the ceil-mode overhang past ``size + p``), otherwise only the
    part inside ``[0, size)``. The 2-D divisor is the product of the two axes' counts.
    """
    start = np.arange(out) * stride - pad
    end = np.minimum(start + kernel, size + pad)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


@dataclass
class AvgPool2dCache(_WindowPoolCache):
    """The divisor map (with the windows) needed to spread the error back."""

    divisor: np.ndarray  # (OH, OW), or (OH, OW, 1) batch-last: broadcasts against the output


def avg_pool2d(
    x: np.ndarray,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    batch_last: bool = False,
) -> tuple[np.ndarray, AvgPool2dCache]:
    """Average pooling with ``torch.nn.functional.avg_pool2d`` semantics (zero padding).

    Args:
        x: input.
        kernel_size: window size.
        stride: window step; defaults to ``kernel_size``.
        padding: implicit zero padding on both sides, at most half the kernel.
        ceil_mode: round the output size up (PyTorch's rule, see :func:`max_pool2d`).
        count_include_pad: divide by the window size including padding (PyTorch's default).
        divisor_override: divide every window sum by this instead.
        batch_last: ``x`` and the output are ``(C, H, W, N)``.

    Returns:
        The output and the cache for :func:`avg_pool2d_backward`.

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (or without ``N``; or ``(C, H, W, N) -> (C, OH, OW,
        N)`` with ``batch_last``), with ``OH = floor_or_ceil((H + 2p - k) / s) + 1``.
    """
    _check_pool_input(x, "avg_pool2d", batch_last)
    geo = pool2d_geometry(
        spatial_shape(x.shape, batch_last), kernel_size, stride, padding, 1, ceil_mode
    )
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("expected a non-zero divisor_override, received divisor_override=0")
        divisor = np.full(geo.out_size, float(divisor_override), dtype=x.dtype)
    else:
        dh, dw = (
            avg_pool_divisors(
                geo.in_size[a],
                geo.kernel[a],
                geo.stride[a],
                geo.padding[a],
                geo.out_size[a],
                count_include_pad,
            )
            for a in range(2)
        )
        divisor = np.multiply.outer(dh, dw).astype(x.dtype)
    if batch_last:
        divisor = divisor[..., None]
    xp = pad2d(x, geo.pads, 0.0, batch_last)
    windows = _windows(geo, batch_last)
    _, _, first = next(windows)
    out = xp[first].copy()
    for _, _, window in windows:
        out += xp[window]
    out /= divisor
    return out, AvgPool2dCache(geo, batch_last, divisor)


def avg_pool2d_backward(grad_out: np.ndarray, cache: AvgPool2dCache) -> np.ndarray:
    """Spread each output's error evenly (``/ divisor``) over its window.

    Shape:
        ``(N, C, OH, OW) -> (N, C, H, W)`` (batch-last: ``(C, OH, OW, N) -> (C, H, W, N)``).
    """
    share = grad_out / cache.divisor
    return _scatter_windows(grad_out, cache, lambda k: share)


# -------------------------------------------------------------------- adaptive average pooling


def adaptive_ranges(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch's adaptive windows: ``start = floor(i*size/out)``, ``end = ceil((i+1)*size/out)``."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def adaptive_avg_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """``A[i, h] = 1 / (end_i - start_i)`` inside window ``i``, else 0.

    Shape:
        ``(out, size)``.
    """
    start, end = adaptive_ranges(size, out)
    h = np.arange(size)
    inside = (h[None, :] >= start[:, None]) & (h[None, :] < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


@dataclass
class AdaptiveAvgPool2dCache:
    """The two averaging matrices (``None`` on the global-average fast path) and the layout."""

    in_size: Pair
    rows: np.ndarray | None  # (OH, H)
    cols: np.ndarray | None  # (OW, W)
    batch_last: bool = False


def adaptive_avg_pool2d(
    x: np.ndarray, output_size: int | tuple[int | None, int | None], batch_last: bool = False
) -> tuple[np.ndarray, AdaptiveAvgPool2dCache]:
    """Adaptive average pooling (``torch.nn.functional.adaptive_avg_pool2d``).

    Output ``(i, j)`` averages rows ``[floor(i*H/OH), ceil((i+1)*H/OH))`` and the matching
    columns; as the window mean is separable, the op is ``A_rows @ x @ A_cols.T``.

    Args:
        x: input.
        output_size: ``OH`` (square) or ``(OH, OW)``; ``None`` keeps that input size.
        batch_last: ``x`` and the output are ``(C, H, W, N)``.

    Returns:
        The output and the cache for :func:`adaptive_avg_pool2d_backward`.

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (or without ``N``; or ``(C, H, W, N) -> (C, OH, OW,
        N)`` with ``batch_last``), with ``(OH, OW)`` from ``output_size``.
    """
    _check_pool_input(x, "adaptive_avg_pool2d", batch_last)
    h, w = spatial_shape(x.shape, batch_last)
    if isinstance(output_size, (int, np.integer)):
        output_size = (int(output_size), int(output_size))
    oh = h if output_size[0] is None else int(output_size[0])
    ow = w if output_size[1] is None else int(output_size[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"expected a positive output_size, received output_size={output_size}")
    spatial_axes = (1, 2) if batch_last else (-2, -1)
    if (oh, ow) == (1, 1):  # global average pooling
        out = x.mean(axis=spatial_axes, keepdims=True)
        return out, AdaptiveAvgPool2dCache((h, w), None, None, batch_last)
    rows = adaptive_avg_matrix(h, oh, x.dtype)
    cols = adaptive_avg_matrix(w, ow, x.dtype)
    cache = AdaptiveAvgPool2dCache((h, w), rows, cols, batch_last)
    if (oh, ow) == (h, w):  # e.g. VGG's 7x7 pooling of a 7x7 map: the identity
        return x.copy(), cache
    if batch_last:  # (C, H, W, N): columns then rows, each one matrix product
        c, n = x.shape[0], x.shape[3]
        partial = np.matmul(cols, x)  # (C, H, OW, N)
        out = np.matmul(rows, partial.reshape(c, h, ow * n)).reshape(c, oh, ow, n)
        return out, cache
    partial = (x.reshape(-1, w) @ cols.T).reshape(*x.shape[:-1], ow)  # one GEMM over all rows
    return np.matmul(rows, partial), cache


def adaptive_avg_pool2d_backward(grad_out: np.ndarray, cache: AdaptiveAvgPool2dCache) -> np.ndarray:
    """``A_rows.T @ grad @ A_cols``: each window's error spread evenly over it.

    Shape:
        ``(N, C, OH, OW) -> (N, C, H, W)`` (batch-last: ``(C, OH, OW, N) -> (C, H, W, N)``).
    """
    h, w = cache.in_size
    if cache.rows is None or cache.cols is None:
        share = grad_out / (h * w)
        shape = with_spatial(grad_out.shape, (h, w), cache.batch_last)
        return np.ascontiguousarray(np.broadcast_to(share, shape))
    if cache.batch_last:
        c, oh, ow, n = grad_out.shape
        by_rows = np.matmul(cache.rows.T, grad_out.reshape(c, oh, ow * n)).reshape(c, h, ow, n)
        return np.matmul(cache.cols.T, by_rows)
    return np.matmul(cache.rows.T, np.matmul(grad_out, cache.cols))
