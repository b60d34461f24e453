"""Output-size, padding and window-span arithmetic: the one copy, for everything in cnnlab.

The models that size a layer from their input, the summary, the input-too-small check,
``--explain``, the receptive-field analysis and the NumPy engine (:mod:`cnnlab.scratch`) all
call these functions. The module imports only the standard library (and :mod:`cnnlab.errors`,
which imports nothing), so the NumPy engine can use it and still import no torch.

The formulas are PyTorch's own (``torch.nn.functional.conv2d`` and
``aten/src/ATen/native/Pool.h: pooling_output_shape``)::

    out = floor((size + pad_left + pad_right - dilation*(kernel-1) - 1) / stride) + 1

and :func:`explain_output_size` writes the arithmetic the way the LeNet-5 article does::

    (32 - 5 + 2*0)/1 + 1 = 28
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cnnlab.errors import ConfigError, expected

Pair = tuple[int, int]


def span(kernel: int, dilation: int = 1) -> int:
    """How many input pixels one window covers along an axis: ``dilation*(kernel-1) + 1``."""
    return dilation * (kernel - 1) + 1


def _room(size: int, kernel: int, padding: int, dilation: int, padding_right: int | None) -> Pair:
    """``(pad_right, room)``: the right padding and ``size + pad_left + pad_right - span``, the
    distance the window can travel (the numerator of the output-size formula)."""
    right = padding if padding_right is None else padding_right
    return right, size + padding + right - span(kernel, dilation)


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

    ``floor((size + pad_left + pad_right - span) / stride) + 1``, or with ``ceil`` in ceil mode,
    where PyTorch also drops a last window that would start in the right padding
    (``(out - 1) * stride >= size + pad_left``).

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
    _, room = _room(size, kernel, padding, dilation, padding_right)
    if not ceil_mode:
        return room // stride + 1
    out = -(-room // stride) + 1
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
    right, room = _room(size, kernel, padding, dilation, padding_right)
    out = conv_output_size(size, kernel, stride, padding, dilation, ceil_mode, padding_right)
    k = str(kernel) if dilation == 1 else f"({dilation}*{kernel - 1}+1)"
    pad = f"2*{padding}" if right == padding else f"{padding}+{right}"
    fraction = f"({size} - {k} + {pad})/{stride}"
    if room % stride:
        fraction = f"{'ceil' if ceil_mode else 'floor'}({fraction})"
    return f"{fraction} + 1 = {out}"


def same_padding(kernel: int, dilation: int = 1) -> Pair:
    """``padding="same"`` along one axis: ``(before, after)`` adding up to ``span - 1``, the odd
    extra pixel after (at the bottom or right), as PyTorch pads."""
    total = span(kernel, dilation) - 1
    return total // 2, total - total // 2


def parse_input_shape(value: str | Sequence[int]) -> tuple[int, int, int]:
    """Parse an input shape ``"C,H,W"`` (or ``"CxHxW"``, ``"C H W"``, ``"(C, H, W)"``, or a
    sequence of three ints): the one parser of every command and function that takes a shape.

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
