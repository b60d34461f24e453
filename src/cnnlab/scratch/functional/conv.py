"""2-D convolution (cross-correlation, as every framework computes it), vectorised with im2col.

Forward: ``out = W @ im2col(pad(x)) + b``, one matrix product for the whole batch, computed in
the batch-last layout (:mod:`cnnlab.scratch.functional.layout`); batch-first callers pay one
transposing copy on the way in and one on the way out.
Backward (seed 004's derivation, in matrix form): the filter gradient is the input
cross-correlated with the error (``g @ cols.T``); the bias gradient sums the error; the input
error is ``W.T @ g`` scattered back by col2im, which is the same thing as the zero-dilated,
padded error cross-correlated with the 180-degree-rotated filter (see
:func:`cnnlab.scratch.functional.naive.conv2d_backward_naive` for that literal form).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cnnlab.scratch.functional._utils import (
    Pair,
    WindowGeometry,
    as_pair,
    check_ndim,
    conv_output_size,
    conv_padding,
    pad2d,
    unpad2d,
)
from cnnlab.scratch.functional.im2col import col2im, im2col
from cnnlab.scratch.functional.layout import to_batch_first, to_batch_last


@dataclass(frozen=True)
class ConvGeometry(WindowGeometry):
    """Everything about a convolution except the numbers: the window sizes, and the channels
    and groups."""

    in_channels: int
    out_channels: int
    groups: int


def conv2d_geometry(
    x_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> ConvGeometry:
    """Validate a convolution's arguments against PyTorch's rules and work out its sizes."""
    _, c, h, w = x_shape
    o, cg, kh, kw = weight_shape
    if groups < 1 or c % groups or o % groups:
        raise ValueError(
            f"expected in_channels and out_channels divisible by groups, received "
            f"in_channels={c}, out_channels={o}, groups={groups}"
        )
    if cg * groups != c:
        raise ValueError(
            f"expected input with {cg * groups} channels (weight {tuple(weight_shape)}, groups="
            f"{groups}), received input of shape {tuple(x_shape)}"
        )
    kernel = (kh, kw)
    stride_, dilation_ = as_pair(stride, "stride"), as_pair(dilation, "dilation")
    pads = conv_padding(padding, kernel, stride_, dilation_)
    out_size = (
        conv_output_size(h, kh, stride_[0], pads[0], dilation_[0]),
        conv_output_size(w, kw, stride_[1], pads[1], dilation_[1]),
    )
    return ConvGeometry(kernel, stride_, dilation_, (h, w), out_size, pads, c, o, groups)


#: Columns (of the ``OH*OW*N`` axis) per BLAS call; see :func:`_matmul_columns`.
COLUMN_CHUNK = 4096


@dataclass
class Conv2dCache:
    """What :func:`conv2d_backward` needs: the columns, the filters, the geometry and the
    layout of the caller's arrays."""

    cols: np.ndarray  # (G, Cg*kh*kw, OH*OW*N)
    weight: np.ndarray
    has_bias: bool
    geometry: ConvGeometry
    batch_last: bool


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
    batch_last: bool = False,
) -> tuple[np.ndarray, Conv2dCache]:
    """2-D convolution with ``torch.nn.functional.conv2d`` semantics.

    Args:
        x: input batch.
        weight: filters.
        bias: one per output channel, or ``None``.
        stride: int or ``(sh, sw)``.
        padding: int, ``(ph, pw)``, ``"valid"`` or ``"same"`` (zero padding).
        dilation: int or ``(dh, dw)``.
        groups: channel groups; ``groups == C`` is a depthwise convolution.
        batch_last: ``x`` and the output are batch-last ``(C, H, W, N)`` arrays (the graph
            executor's layout, :mod:`cnnlab.scratch.functional.layout`), not ``(N, C, H, W)``.

    Returns:
        The output and the cache for :func:`conv2d_backward`.

    Shape:
        - x: ``(N, C, H, W)``, or ``(C, H, W, N)`` with ``batch_last``
        - weight: ``(O, C / groups, kh, kw)``; bias: ``(O,)``
        - output: ``(N, O, OH, OW)`` (or ``(O, OH, OW, N)``), with
          ``OH = floor((H + pt + pb - dh*(kh-1) - 1) / sh) + 1``.
    """
    check_ndim(x, 4, "conv2d", "(C, H, W, N)" if batch_last else "(N, C, H, W)")
    xb = x if batch_last else to_batch_last(x)
    c, h, w, n = xb.shape
    geo = conv2d_geometry((n, c, h, w), weight.shape, stride, padding, dilation, groups)
    g, o = groups, geo.out_channels
    oh, ow = geo.out_size
    xp = pad2d(xb, geo.pads, batch_last=True)
    cols = im2col(xp, geo.kernel, geo.stride, geo.dilation, geo.out_size)
    cols = cols.reshape(g, -1, oh * ow * n)  # (G, Cg*kh*kw, OH*OW*N)
    out = _matmul_columns(weight.reshape(g, o // g, -1), cols).reshape(o, oh, ow, n)
    if bias is not None:
        out += bias[:, None, None, None]
    cache = Conv2dCache(cols, weight, bias is not None, geo, batch_last)
    return (out if batch_last else to_batch_first(out)), cache


def conv2d_backward(
    grad_out: np.ndarray, cache: Conv2dCache, needs_input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d`.

    Args:
        grad_out: gradient of the loss with respect to the output (in the forward's layout).
        cache: from the forward pass.
        needs_input_grad: ``False`` skips the input gradient (e.g. for the first layer).

    Returns:
        ``(grad_x, grad_weight, grad_bias)``; ``grad_x`` is ``None`` when not needed and
        ``grad_bias`` is ``None`` without bias.

    Shape:
        - grad_out: ``(N, O, OH, OW)``, or ``(O, OH, OW, N)`` with ``batch_last``
        - grad_x: ``(N, C, H, W)`` (or ``(C, H, W, N)``); grad_weight: ``(O, C / groups, kh,
          kw)``; grad_bias: ``(O,)``
    """
    geo = cache.geometry
    g, o = geo.groups, geo.out_channels
    gb = grad_out if cache.batch_last else to_batch_last(grad_out)  # (O, OH, OW, N)
    n = gb.shape[3]
    g2 = np.ascontiguousarray(gb).reshape(g, o // g, -1)  # (G, O/G, OH*OW*N)
    grad_w = _weight_gradient(g2, cache.cols).reshape(cache.weight.shape)
    grad_b = g2.reshape(o, -1).sum(axis=1) if cache.has_bias else None
    if not needs_input_grad:
        return None, grad_w, grad_b
    w2 = cache.weight.reshape(g, o // g, -1)
    dcols = _matmul_columns(w2.transpose(0, 2, 1), g2)  # (G, Cg*kh*kw, OH*OW*N)
    dcols = dcols.reshape(geo.in_channels, *geo.kernel, *geo.out_size, n)
    gxp = col2im(dcols, geo.padded_size, geo.kernel, geo.stride, geo.dilation)  # (C, Hp, Wp, N)
    gx = unpad2d(gxp, geo.pads, geo.in_size, batch_last=True)
    return (np.ascontiguousarray(gx) if cache.batch_last else to_batch_first(gx)), grad_w, grad_b


def _matmul_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a small ``a`` and a ``b`` with very many columns, one
    :data:`COLUMN_CHUNK`-column slice of ``b`` per BLAS call.

    OpenBLAS is slow on a product as flat as LeNet-5's first layer (``6 x 25`` by
    ``25 x 100,352``); slices that stay in the core's cache made it 2-3x faster on the 2-core
    benchmark machine and cost nothing on the other layers.

    Shape:
        ``(G, M, K), (G, K, L) -> (G, M, L)``.
    """
    out = np.empty((*a.shape[:-1], b.shape[-1]), dtype=np.result_type(a, b))
    for part in _column_chunks(b.shape[-1]):
        np.matmul(a, b[..., part], out=out[..., part])
    return out


def _weight_gradient(g2: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``g2 @ cols.T`` per group: the input cross-correlated with the error.

    The shared axis (``OH*OW*N``) is long and the result small; as in :func:`_matmul_columns`,
    the product is summed over :data:`COLUMN_CHUNK`-column slices, each computed as
    ``cols @ g2.T`` (which OpenBLAS does faster than ``g2 @ cols.T``).

    Shape:
        ``(G, O/G, L), (G, K, L) -> (G, O/G, K)``.
    """
    total = np.zeros((cols.shape[0], cols.shape[1], g2.shape[1]), dtype=g2.dtype)  # (G, K, O/G)
    for part in _column_chunks(cols.shape[-1]):
        total += np.matmul(cols[..., part], g2[..., part].transpose(0, 2, 1))
    return total.transpose(0, 2, 1)


def _column_chunks(length: int) -> Iterator[slice]:
    """Consecutive slices of at most :data:`COLUMN_CHUNK` columns covering ``range(length)``."""
    for start in range(0, length, COLUMN_CHUNK):
        yield slice(start, start + COLUMN_CHUNK)
