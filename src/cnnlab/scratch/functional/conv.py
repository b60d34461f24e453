"""2-D convolution (cross-correlation, as every framework computes it), vectorised with im2col.

Forward: ``out = W @ im2col(pad(x)) + b``, one matrix product for the whole batch.
Backward (seed 004's derivation, in matrix form): the filter gradient is the input
cross-correlated with the error (``g @ cols.T``); the bias gradient sums the error; the input
error is ``W.T @ g`` scattered back by col2im, which is the same thing as the zero-dilated,
padded error cross-correlated with the 180-degree-rotated filter (see
:func:`cnnlab.scratch.functional.naive.conv2d_backward_naive` for that literal form).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.scratch.functional._utils import (
    Padding2d,
    Pair,
    as_pair,
    check_ndim,
    conv_output_size,
    conv_padding,
    pad2d,
    unpad2d,
)
from cnnlab.scratch.functional.im2col import col2im, im2col


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about a convolution except the numbers: sizes, padding, stride, dilation."""

    in_channels: int
    out_channels: int
    groups: int
    kernel: Pair
    stride: Pair
    dilation: Pair
    pads: Padding2d
    in_size: Pair
    out_size: Pair

    @property
    def padded_size(self) -> Pair:
        (pt, pb), (pl, pr) = self.pads
        return self.in_size[0] + pt + pb, self.in_size[1] + pl + pr


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
        conv_output_size(h, kh, stride_[0], sum(pads[0]), dilation_[0]),
        conv_output_size(w, kw, stride_[1], sum(pads[1]), dilation_[1]),
    )
    return ConvGeometry(c, o, groups, kernel, stride_, dilation_, pads, (h, w), out_size)


@dataclass
class Conv2dCache:
    """What :func:`conv2d_backward` needs: the columns, the filters and the geometry."""

    cols: np.ndarray  # (G, Cg*kh*kw, N*OH*OW)
    weight: np.ndarray
    has_bias: bool
    geometry: ConvGeometry


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
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

    Returns:
        The output and the cache for :func:`conv2d_backward`.

    Shape:
        - x: ``(N, C, H, W)``
        - weight: ``(O, C / groups, kh, kw)``; bias: ``(O,)``
        - output: ``(N, O, OH, OW)``, ``OH = floor((H + pt + pb - dh*(kh-1) - 1) / sh) + 1``.
    """
    check_ndim(x, 4, "conv2d", "(N, C, H, W)")
    geo = conv2d_geometry(x.shape, weight.shape, stride, padding, dilation, groups)
    n = x.shape[0]
    g, o = groups, geo.out_channels
    oh, ow = geo.out_size
    xp = pad2d(x.transpose(1, 0, 2, 3), geo.pads)  # (C, N, Hp, Wp)
    cols = im2col(xp, geo.kernel, geo.stride, geo.dilation, geo.out_size)
    cols = cols.reshape(g, -1, n * oh * ow)  # (G, Cg*kh*kw, N*OH*OW)
    out = np.matmul(weight.reshape(g, o // g, -1), cols).reshape(o, n * oh * ow)
    if bias is not None:
        out += bias[:, None]
    out = np.ascontiguousarray(out.reshape(o, n, oh, ow).transpose(1, 0, 2, 3))  # (N, O, OH, OW)
    return out, Conv2dCache(cols, weight, bias is not None, geo)


def conv2d_backward(
    grad_out: np.ndarray, cache: Conv2dCache, needs_input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d`.

    Args:
        grad_out: gradient of the loss with respect to the output.
        cache: from the forward pass.
        needs_input_grad: ``False`` skips the input gradient (e.g. for the first layer).

    Returns:
        ``(grad_x, grad_weight, grad_bias)``; ``grad_x`` is ``None`` when not needed and
        ``grad_bias`` is ``None`` without bias.

    Shape:
        - grad_out: ``(N, O, OH, OW)``
        - grad_x: ``(N, C, H, W)``; grad_weight: ``(O, C / groups, kh, kw)``; grad_bias: ``(O,)``
    """
    geo = cache.geometry
    n, o, oh, ow = grad_out.shape
    g = geo.groups
    g2 = np.ascontiguousarray(grad_out.transpose(1, 0, 2, 3)).reshape(g, o // g, n * oh * ow)
    grad_w = np.matmul(g2, cache.cols.transpose(0, 2, 1)).reshape(cache.weight.shape)
    grad_b = grad_out.sum(axis=(0, 2, 3)) if cache.has_bias else None
    if not needs_input_grad:
        return None, grad_w, grad_b
    w2 = cache.weight.reshape(g, o // g, -1)
    dcols = np.matmul(w2.transpose(0, 2, 1), g2)  # (G, Cg*kh*kw, N*OH*OW)
    dcols = dcols.reshape(geo.in_channels, *geo.kernel, n, oh, ow)
    gxp = col2im(dcols, geo.padded_size, geo.kernel, geo.stride, geo.dilation)  # (C, N, Hp, Wp)
    grad_x = np.ascontiguousarray(unpad2d(gxp, geo.pads, geo.in_size).transpose(1, 0, 2, 3))
    return grad_x, grad_w, grad_b
