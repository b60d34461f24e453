"""Argument normalisation, the checks of PyTorch's shape rules, and the window slicing the
scratch ops share.

The size formulas themselves are :mod:`cnnlab.shapes` (standard library only, so the NumPy
engine still imports nothing but NumPy); this module adds the errors PyTorch raises for windows
that do not fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cnnlab import shapes
from cnnlab.shapes import Pair

#: ``((top, bottom), (left, right))``: explicit, possibly asymmetric, spatial padding.
Padding2d = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class WindowGeometry:
    """The sizes of a sliding-window op (convolution, pooling): its kernel, stride and dilation,
    the input and output maps, and the padding (``pads``, possibly asymmetric)."""

    kernel: Pair
    stride: Pair
    dilation: Pair
    in_size: Pair
    out_size: Pair
    pads: Padding2d

    @property
    def padded_size(self) -> Pair:
        """``(H, W)`` of the padded input map."""
        return padded_size(self.in_size, self.pads)


def as_pair(value: int | tuple[int, ...] | list[int], name: str) -> Pair:
    """Expand an int to ``(v, v)``; validate a length-2 sequence of ints."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    items = tuple(int(v) for v in value)
    if len(items) != 2:
        raise ValueError(
            f"expected {name} to be an int or a pair of ints, received {name}={value!r}"
        )
    return items[0], items[1]


def conv_padding(
    padding: int | tuple[int, int] | str, kernel: Pair, stride: Pair, dilation: Pair
) -> Padding2d:
    """Resolve ``Conv2d``'s padding argument (int, pair, ``"valid"`` or ``"same"``).

    ``"same"`` pads ``dilation * (kernel - 1)`` in total per axis, the extra one (when odd) at
    the bottom/right, as PyTorch does; like PyTorch it requires stride 1.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"expected stride=1 with padding='same' (as PyTorch), received stride={stride}"
                )
            return shapes.same_padding(kernel[0], dilation[0]), shapes.same_padding(
                kernel[1], dilation[1]
            )
        raise ValueError(f"expected padding 'valid', 'same' or ints, received padding={padding!r}")
    ph, pw = as_pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"expected non-negative padding, received padding={padding!r}")
    return (ph, ph), (pw, pw)


def conv_output_size(size: int, kernel: int, stride: int, pads: Pair, dilation: int) -> int:
    """:func:`cnnlab.shapes.conv_output_size` with padding ``(before, after)``, refusing an
    input smaller than the window as PyTorch does."""
    out = shapes.conv_output_size(size, kernel, stride, pads[0], dilation, padding_right=pads[1])
    if out < 1:
        raise ValueError(
            f"expected an input of at least {shapes.span(kernel, dilation) - sum(pads)} pixels "
            f"for kernel {kernel} (dilation {dilation}, padding {sum(pads)}), received size={size}"
        )
    return out


def pool_output_size(
    size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool
) -> int:
    """PyTorch's ``pooling_output_shape`` (:func:`cnnlab.shapes.conv_output_size`), refusing
    padding over half the kernel and windows larger than the input, as PyTorch does."""
    if pad > kernel // 2:
        raise ValueError(
            f"expected padding at most half the kernel size ({kernel // 2}), received padding={pad}"
        )
    out = shapes.conv_output_size(size, kernel, stride, pad, dilation, ceil_mode)
    if out < 1:
        raise ValueError(
            f"expected an input larger than the pooling window {kernel}, received size={size}"
        )
    return out


def window_slices(
    kernel: Pair, stride: Pair, dilation: Pair, out_size: Pair, batch_last: bool = False
) -> Iterator[tuple[int, int, tuple]]:
    """For each kernel offset ``(i, j)``, the index of the strided window of a padded map it
    touches.

    ``padded[index]`` is then the ``(OH, OW)`` map of the inputs that kernel element ``(i, j)``
    meets at every output position; im2col, col2im and the pools loop over these ``kh * kw``
    offsets instead of over pixels. The index addresses the last two axes, or with
    ``batch_last`` the axes 1 and 2 of a ``(C, H, W, N)`` array (see
    :mod:`cnnlab.scratch.functional.layout`).
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_size
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            hs = slice(h0, h0 + sh * (oh - 1) + 1, sh)
            ws = slice(w0, w0 + sw * (ow - 1) + 1, sw)
            yield i, j, spatial_index(hs, ws, batch_last)


def spatial_index(hs: slice, ws: slice, batch_last: bool = False) -> tuple:
    """An index selecting rows ``hs`` and columns ``ws`` of every map: ``(..., hs, ws)`` for
    ``(*, H, W)`` arrays, ``(:, hs, ws)`` for batch-last ``(C, H, W, N)`` arrays."""
    return (slice(None), hs, ws) if batch_last else (Ellipsis, hs, ws)


def spatial_shape(x_shape: tuple[int, ...], batch_last: bool = False) -> Pair:
    """``(H, W)`` of an ``(*, H, W)`` shape, or of a batch-last ``(C, H, W, N)`` shape."""
    h, w = x_shape[1:3] if batch_last else x_shape[-2:]
    return int(h), int(w)


def with_spatial(x_shape: tuple[int, ...], size: Pair, batch_last: bool = False) -> tuple:
    """``x_shape`` with its spatial size replaced by ``size`` (same layout rules)."""
    if batch_last:
        return (x_shape[0], *size, *x_shape[3:])
    return (*x_shape[:-2], *size)


def padded_size(size: Pair, pads: Padding2d) -> Pair:
    """``(H, W)`` of a map of ``size`` after padding it by ``pads``."""
    (pt, pb), (pl, pr) = pads
    return size[0] + pt + pb, size[1] + pl + pr


def pad2d(
    x: np.ndarray, pads: Padding2d, value: float = 0.0, batch_last: bool = False
) -> np.ndarray:
    """Pad the spatial axes of ``x``; returns ``x`` itself when there is nothing to pad.

    Shape:
        ``(*, H, W) -> (*, H + pt + pb, W + pl + pr)``, or batch-last
        ``(C, H, W, N) -> (C, H + pt + pb, W + pl + pr, N)``.
    """
    (pt, pb), (pl, pr) = pads
    if pt == pb == pl == pr == 0:
        return x
    h, w = spatial_shape(x.shape, batch_last)
    out = np.full(with_spatial(x.shape, (h + pt + pb, w + pl + pr), batch_last), value, x.dtype)
    out[spatial_index(slice(pt, pt + h), slice(pl, pl + w), batch_last)] = x
    return out


def unpad2d(x: np.ndarray, pads: Padding2d, size: Pair, batch_last: bool = False) -> np.ndarray:
    """Crop what :func:`pad2d` added (a view)."""
    (pt, _), (pl, _) = pads
    return x[spatial_index(slice(pt, pt + size[0]), slice(pl, pl + size[1]), batch_last)]


def check_ndim(x: np.ndarray, ndim: int | tuple[int, ...], name: str, layout: str) -> None:
    """Raise unless ``x.ndim`` is ``ndim`` (or one of them)."""
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if x.ndim not in allowed:
        raise ValueError(f"expected {name} input of shape {layout}, received shape {x.shape}")
