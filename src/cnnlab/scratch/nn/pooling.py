"""Pooling layers: ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``."""

from __future__ import annotations

from typing import Any

from cnnlab.scratch.functional import pool as F
from cnnlab.scratch.functional._utils import Pair
from cnnlab.scratch.grad_mode import is_grad_enabled
from cnnlab.scratch.nn.functional_layer import FunctionalLayer


class _WindowPool2d(FunctionalLayer):
    """What the sliding-window pools share: PyTorch's ``kernel_size``, ``stride`` (the kernel
    size by default), ``padding`` and ``ceil_mode``, and the batch-last layout.

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (batch-last: ``(C, H, W, N) -> (C, OH, OW, N)``).
    """

    accepts_batch_last = True

    def __init__(
        self,
        kernel_size: int | Pair,
        stride: int | Pair | None,
        padding: int | Pair,
        ceil_mode: bool,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_WindowPool2d):
    """``torch.nn.MaxPool2d`` (``-inf`` padding, dilation, ``ceil_mode``; saves the argmax).

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (batch-last: ``(C, H, W, N) -> (C, OH, OW, N)``),
        ``OH = floor_or_ceil((H + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1``.
    """

    forward_fn, backward_fn = F.max_pool2d, F.max_pool2d_backward

    def __init__(
        self,
        kernel_size: int | Pair,
        stride: int | Pair | None = None,
        padding: int | Pair = 0,
        dilation: int | Pair = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if return_indices:
            raise ValueError(
                "expected return_indices=False (use functional.max_pool2d_indices), received True"
            )
        self.dilation = dilation

    def op_args(self) -> tuple[Any, ...]:
        # the argmax only when a backward pass can follow
        return (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.batch_last,
            is_grad_enabled(),
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class AvgPool2d(_WindowPool2d):
    """``torch.nn.AvgPool2d`` (``count_include_pad``, ``ceil_mode``, ``divisor_override``).

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (batch-last: ``(C, H, W, N) -> (C, OH, OW, N)``),
        ``OH = floor_or_ceil((H + 2 * padding - kernel) / stride) + 1``.
    """

    forward_fn, backward_fn = F.avg_pool2d, F.avg_pool2d_backward

    def __init__(
        self,
        kernel_size: int | Pair,
        stride: int | Pair | None = None,
        padding: int | Pair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def op_args(self) -> tuple[Any, ...]:
        return (
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
            self.batch_last,
        )


class AdaptiveAvgPool2d(FunctionalLayer):
    """``torch.nn.AdaptiveAvgPool2d``; ``output_size`` int, pair, or pair with ``None``.

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (batch-last: ``(C, H, W, N) -> (C, OH, OW, N)``),
        ``(OH, OW)`` from ``output_size``.
    """

    accepts_batch_last = True
    forward_fn, backward_fn = F.adaptive_avg_pool2d, F.adaptive_avg_pool2d_backward

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        self.output_size = output_size

    def op_args(self) -> tuple[Any, ...]:
        return (self.output_size, self.batch_last)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
