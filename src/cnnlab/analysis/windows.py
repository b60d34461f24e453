"""Which torch calls slide a window over their input, and that window's geometry.

The trace (:mod:`cnnlab.analysis.trace`) asks :func:`window_of` about every call it records; the
geometry is a :class:`cnnlab.shapes.Window`, whose size arithmetic is :mod:`cnnlab.shapes`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.shapes import Pair, Window, same_padding


def _pair(value: int | Sequence[int]) -> Pair:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[-1])


def _bind(args: tuple[Any, ...], kwargs: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_MAXPOOL_ARGS = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode")
_AVGPOOL_ARGS = ("input", "kernel_size", "stride", "padding", "ceil_mode")


def _conv_window(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Window:
    a = _bind(args, kwargs, _CONV_ARGS)
    kernel = _pair(tuple(a["weight"].shape[2:]))
    dilation = _pair(a.get("dilation", 1))
    padding = a.get("padding", 0)
    if isinstance(padding, str):  # "valid" or "same" (PyTorch puts an odd extra pixel last)
        (top, bottom), (left, right) = (0, 0), (0, 0)
        if padding == "same":
            top, bottom = same_padding(kernel[0], dilation[0])
            left, right = same_padding(kernel[1], dilation[1])
        stride = _pair(a.get("stride", 1))
        return Window("conv", kernel, stride, (top, left), (bottom, right), dilation)
    return Window(
        "conv", kernel, _pair(a.get("stride", 1)), _pair(padding), _pair(padding), dilation
    )


def _pool_window(kind: str, names: Sequence[str]) -> Callable[..., Window]:
    def parse(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Window:
        a = _bind(args, kwargs, names)
        kernel = _pair(a["kernel_size"])
        stride = _pair(a.get("stride") or kernel)
        padding = _pair(a.get("padding", 0))
        dilation = _pair(a.get("dilation", 1))
        return Window(kind, kernel, stride, padding, padding, dilation, bool(a.get("ceil_mode")))

    return parse


WINDOW_OPS: dict[Callable[..., Any], Callable[..., Window]] = {
    torch.conv2d: _conv_window,
    F.max_pool2d: _pool_window("max pool", _MAXPOOL_ARGS),
    torch.max_pool2d: _pool_window("max pool", _MAXPOOL_ARGS),
    F.avg_pool2d: _pool_window("avg pool", _AVGPOOL_ARGS),
}


def window_of(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Window | None:
    """The window geometry of a torch call if it is a 2-D convolution or pooling, else None."""
    parse = WINDOW_OPS.get(func)
    if parse is None:
        return None
    x = args[0] if args else kwargs.get("input")
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4):
        return None
    return parse(args, kwargs)
