"""Output-size arithmetic: the one place for the convolution / pooling size formula.

Everything in cnnlab that needs an output size (models that size a layer from their input, the
summary, the input-too-small check, ``--explain``) calls :func:`conv_output_size`, and
:func:`explain_output_size` writes the same arithmetic the way the seeds do::

    (32 - 5 + 2*0)/1 + 1 = 28
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.errors import ConfigError, expected


def conv_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
    padding_right: int | None = None,
) -> int:
    """Output size of a convolution or pooling window along one axis, as PyTorch computes it.

    ``floor((size + pad_left + pad_right - dilation*(kernel-1) - 1) / stride) + 1``, or with
    ``ceil`` in ceil mode, where PyTorch also drops a last window that would start in the right
    padding.

    Args:
        size: input size along the axis.
        kernel: window size.
        stride: window step.
        padding: padding on the left (and on the right unless ``padding_right`` is given).
        dilation: spacing between window taps.
        ceil_mode: round up instead of down (pooling layers).
        padding_right: padding on the right when it differs from the left.

    Returns:
        The output size; ``<= 0`` means the input is too small for the window.
    """
    right = padding if padding_right is None else padding_right
    span = size + padding + right - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def explain_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
    padding_right: int | None = None,
) -> str:
    """The arithmetic of :func:`conv_output_size` written out, e.g. ``(32 - 5 + 2*0)/1 + 1 = 28``.

    A division that is not exact is wrapped in ``floor(...)`` (or ``ceil(...)`` in ceil mode);
    a dilated kernel is written as its effective size ``d*(k-1)+1``.
    """
    right = padding if padding_right is None else padding_right
    out = conv_output_size(size, kernel, stride, padding, dilation, ceil_mode, padding_right)
    k = str(kernel) if dilation == 1 else f"({dilation}*{kernel - 1}+1)"
    pad = f"2*{padding}" if right == padding else f"{padding}+{right}"
    fraction = f"({size} - {k} + {pad})/{stride}"
    if (size + padding + right - dilation * (kernel - 1) - 1) % stride:
        fraction = f"{'ceil' if ceil_mode else 'floor'}({fraction})"
    return f"{fraction} + 1 = {out}"


def parse_input_shape(value: str | Sequence[int]) -> tuple[int, int, int]:
    """Parse an input shape ``"C,H,W"`` (or ``"CxHxW"``, or a sequence of three ints).

    Raises:
        ConfigError: not three positive integers.
    """
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,x\s]+", value.strip().strip("()[]")) if p]
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ConfigError(
                expected("an input shape C,H,W of three positive integers", input=value)
            )
        shape = tuple(int(p) for p in parts)
    else:
        shape = tuple(value)
        if len(shape) != 3 or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in shape
        ):
            raise ConfigError(
                expected("an input shape (C, H, W) of three positive integers", input_shape=value)
            )
    if min(shape) < 1:
        raise ConfigError(expected("an input shape C,H,W of three positive integers", input=value))
    return shape  # type: ignore[return-value]


Pair = tuple[int, int]


@dataclass(frozen=True)
class Window:
    """The sliding-window geometry of one 2-D convolution or pooling call, per axis (H, W).

    Attributes:
        kind: ``"conv"``, ``"max pool"`` or ``"avg pool"``.
        kernel, stride, dilation: per axis.
        padding: padding before (top, left); ``padding_end``: after (bottom, right).
        ceil_mode: pooled sizes rounded up.
    """

    kind: str
    kernel: Pair
    stride: Pair
    padding: Pair
    padding_end: Pair
    dilation: Pair = (1, 1)
    ceil_mode: bool = False

    def _axis(self, i: int) -> tuple[int, int, int, int, bool, int]:
        return (
            self.kernel[i], self.stride[i], self.padding[i], self.dilation[i], self.ceil_mode,
            self.padding_end[i],
        )  # fmt: skip

    def output_hw(self, in_hw: Pair) -> Pair:
        """Output (H, W) for an input of spatial size ``in_hw``."""
        h, w = (conv_output_size(in_hw[i], *self._axis(i)) for i in range(2))
        return h, w

    def explain(self, in_hw: Pair) -> list[str]:
        """The size arithmetic for H (and for W too when it differs), as the seeds write it."""
        lines = [explain_output_size(in_hw[i], *self._axis(i)) for i in range(2)]
        return lines[:1] if lines[0] == lines[1] else lines


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
        total = (0, 0)
        if padding == "same":
            total = (dilation[0] * (kernel[0] - 1), dilation[1] * (kernel[1] - 1))
        before = (total[0] // 2, total[1] // 2)
        end = (total[0] - before[0], total[1] - before[1])
        return Window("conv", kernel, _pair(a.get("stride", 1)), before, end, dilation)
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
