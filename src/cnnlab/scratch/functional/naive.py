"""Loop implementations of convolution and pooling, written straight from the definitions.

They are the test oracle for the vectorised ops (never used in training): convolution loops
over output pixels, and its backward is seed 004's derivation taken literally, i.e. the input
error is the zero-dilated (stride), fully padded error cross-correlated with the
180-degree-rotated filters, and the filter gradient is the input cross-correlated with the
error. Pooling windows are cut out pixel by pixel with PyTorch's index arithmetic.
"""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional._utils import Pair, as_pair
from cnnlab.scratch.functional.conv import ConvGeometry, conv2d_geometry
from cnnlab.scratch.functional.pool import adaptive_ranges, pool2d_geometry


def _patch(xp: np.ndarray, c0: int, c1: int, at: Pair, geo: ConvGeometry) -> np.ndarray:
    """The window of output pixel ``at`` over channels ``c0:c1`` of the padded input.

    Shape:
        ``(N, C, Hp, Wp) -> (N, c1 - c0, kh, kw)``.
    """
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    oh, ow = at
    return xp[
        :,
        c0:c1,
        oh * sh : oh * sh + dh * (kh - 1) + 1 : dh,
        ow * sw : ow * sw + dw * (kw - 1) + 1 : dw,
    ]


def conv2d_naive(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> np.ndarray:
    """Convolution by a loop over output pixels and groups.

    Shape:
        ``(N, C, H, W), (O, C/groups, kh, kw) -> (N, O, OH, OW)``.
    """
    geo = conv2d_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    (pt, pb), (pl, pr) = geo.pads
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    cg, og = x.shape[1] // groups, weight.shape[0] // groups
    out = np.zeros((x.shape[0], weight.shape[0], *geo.out_size), dtype=x.dtype)
    for g in range(groups):
        w = weight[g * og : (g + 1) * og]
        for oh in range(geo.out_size[0]):
            for ow in range(geo.out_size[1]):
                patch = _patch(xp, g * cg, (g + 1) * cg, (oh, ow), geo)
                out[:, g * og : (g + 1) * og, oh, ow] = np.einsum("nckl,ockl->no", patch, w)
    if bias is not None:
        out += bias[None, :, None, None]
    return out


def _dilate(g: np.ndarray, stride: Pair) -> np.ndarray:
    """Insert ``stride - 1`` zeros between error elements (undo the stride's skipping)."""
    n, o, oh, ow = g.shape
    out = np.zeros((n, o, (oh - 1) * stride[0] + 1, (ow - 1) * stride[1] + 1), dtype=g.dtype)
    out[:, :, :: stride[0], :: stride[1]] = g
    return out


def conv2d_backward_naive(
    grad_out: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seed 004's backward: rotated filters for the input error, loops for the filter gradient.

    Returns:
        ``(grad_x, grad_weight, grad_bias)``.

    Shape:
        grad_out ``(N, O, OH, OW)`` -> ``(N, C, H, W), (O, C/groups, kh, kw), (O,)``.
    """
    geo = conv2d_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    (pt, pb), (pl, pr) = geo.pads
    (kh, kw), (dh, dw) = geo.kernel, geo.dilation
    hp, wp = geo.padded_size
    cg, og = x.shape[1] // groups, weight.shape[0] // groups
    # Input error: dilate, pad fully (plus the rows/columns the last window never reached),
    # then cross-correlate with the rotated, in/out-swapped filters.
    g_dil = _dilate(grad_out, geo.stride)
    full_h, full_w = dh * (kh - 1), dw * (kw - 1)
    rest_h = hp - (g_dil.shape[2] + full_h)
    rest_w = wp - (g_dil.shape[3] + full_w)
    g_pad = np.pad(g_dil, ((0, 0), (0, 0), (full_h, full_h + rest_h), (full_w, full_w + rest_w)))
    grad_xp = np.zeros((x.shape[0], x.shape[1], hp, wp), dtype=x.dtype)
    for g in range(groups):
        w = weight[g * og : (g + 1) * og]  # (Og, Cg, kh, kw)
        rotated = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (Cg, Og, kh, kw)
        grad_xp[:, g * cg : (g + 1) * cg] = conv2d_naive(
            g_pad[:, g * og : (g + 1) * og], np.ascontiguousarray(rotated), dilation=geo.dilation
        )
    grad_x = grad_xp[:, :, pt : pt + x.shape[2], pl : pl + x.shape[3]]
    # Filter gradient: the input cross-correlated with the error, pixel by pixel.
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    grad_w = np.zeros_like(weight)
    for g in range(groups):
        for oh in range(geo.out_size[0]):
            for ow in range(geo.out_size[1]):
                patch = _patch(xp, g * cg, (g + 1) * cg, (oh, ow), geo)
                err = grad_out[:, g * og : (g + 1) * og, oh, ow]
                grad_w[g * og : (g + 1) * og] += np.einsum("no,nckl->ockl", err, patch)
    return grad_x, grad_w, grad_out.sum(axis=(0, 2, 3))


def _pool_window(
    size: int, o: int, kernel: int, stride: int, pad: int, dilation: int
) -> np.ndarray:
    """Input indices of window ``o`` along one axis (may fall outside ``[0, size)``)."""
    return o * stride - pad + dilation * np.arange(kernel)


def max_pool2d_naive(
    x: np.ndarray,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    ceil_mode: bool = False,
    grad_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max pooling pixel by pixel; with ``grad_out`` also the routed input gradient.

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` and, if asked, ``(N, C, H, W)``.
    """
    n, c, h, w = x.shape
    geo = pool2d_geometry((h, w), kernel_size, stride, padding, dilation, ceil_mode)
    out = np.empty((n, c, *geo.out_size), dtype=x.dtype)
    grad_x = None if grad_out is None else np.zeros_like(x)
    nn_, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for oh in range(geo.out_size[0]):
        rows = _pool_window(h, oh, geo.kernel[0], geo.stride[0], geo.padding[0], geo.dilation[0])
        for ow in range(geo.out_size[1]):
            cols = _pool_window(
                w, ow, geo.kernel[1], geo.stride[1], geo.padding[1], geo.dilation[1]
            )
            hh, ww = np.meshgrid(rows, cols, indexing="ij")
            hh, ww = hh.ravel(), ww.ravel()  # window positions in row-major order
            keep = (hh >= 0) & (hh < h) & (ww >= 0) & (ww < w)
            hh, ww = hh[keep], ww[keep]
            values = x[:, :, hh, ww]  # (N, C, K)
            best = values.argmax(axis=2)  # first maximum wins
            out[:, :, oh, ow] = np.take_along_axis(values, best[..., None], axis=2)[..., 0]
            if grad_x is not None and grad_out is not None:
                grad_x[nn_, cc, hh[best], ww[best]] += grad_out[:, :, oh, ow]
    return out, grad_x


def avg_pool2d_naive(
    x: np.ndarray,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    grad_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Average pooling pixel by pixel with PyTorch's divisor rules (as in its CPU kernel).

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` and, if asked, ``(N, C, H, W)``.
    """
    n, c, h, w = x.shape
    geo = pool2d_geometry((h, w), kernel_size, stride, padding, 1, ceil_mode)
    (kh, kw), (sh, sw), (ph, pw) = geo.kernel, geo.stride, geo.padding
    out = np.empty((n, c, *geo.out_size), dtype=x.dtype)
    grad_x = None if grad_out is None else np.zeros_like(x)
    for oh in range(geo.out_size[0]):
        for ow in range(geo.out_size[1]):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)
            pool_size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = pool_size
            else:
                divisor = (h1 - h0) * (w1 - w0)
            out[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / divisor
            if grad_x is not None and grad_out is not None:
                grad_x[:, :, h0:h1, w0:w1] += grad_out[:, :, oh, ow, None, None] / divisor
    return out, grad_x


def adaptive_avg_pool2d_naive(
    x: np.ndarray, output_size: int | Pair, grad_out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Adaptive average pooling pixel by pixel (``start = floor``, ``end = ceil``).

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` and, if asked, ``(N, C, H, W)``.
    """
    oh_, ow_ = as_pair(output_size, "output_size")
    h, w = x.shape[-2:]
    rs, re = adaptive_ranges(h, oh_)
    cs, ce = adaptive_ranges(w, ow_)
    out = np.empty((*x.shape[:-2], oh_, ow_), dtype=x.dtype)
    grad_x = None if grad_out is None else np.zeros_like(x)
    for i in range(oh_):
        for j in range(ow_):
            window = x[..., rs[i] : re[i], cs[j] : ce[j]]
            out[..., i, j] = window.mean(axis=(-2, -1))
            if grad_x is not None and grad_out is not None:
                grad_x[..., rs[i] : re[i], cs[j] : ce[j]] += grad_out[..., i, j, None, None] / (
                    window.shape[-2] * window.shape[-1]
                )
    return out, grad_x
