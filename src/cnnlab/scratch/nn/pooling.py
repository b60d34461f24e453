"""Pooling layers: ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional import pool as F
from cnnlab.scratch.functional._utils import Pair
from cnnlab.scratch.grad_mode import is_grad_enabled
from cnnlab.scratch.nn.module import Module


class MaxPool2d(Module):
    """``torch.nn.MaxPool2d`` (``-inf`` padding, dilation, ``ceil_mode``; saves the argmax).

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (batch-last: ``(C, H, W, N) -> (C, OH, OW, N)``).
    """

    accepts_batch_last = True

    def __init__(
        self,
        kernel_size: int | Pair,
        stride: int | Pair | None = None,
        padding: int | Pair = 0,
        dilation: int | Pair = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        if return_indices:
            raise ValueError(
                "expected return_indices=False (use functional.max_pool2d_indices), received True"
            )
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.max_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.batch_last,
            with_argmax=is_grad_enabled(),
        )
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.max_pool2d_backward(grad_out, self._saved())

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool2d(Module):
    """``torch.nn.AvgPool2d`` (``count_include_pad``, ``ceil_mode``, ``divisor_override``).

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (batch-last: ``(C, H, W, N) -> (C, OH, OW, N)``).
    """

    accepts_batch_last = True

    def __init__(
        self,
        kernel_size: int | Pair,
        stride: int | Pair | None = None,
        padding: int | Pair = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.avg_pool2d(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.ceil_mode,
            self.count_include_pad,
            self.divisor_override,
            self.batch_last,
        )
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.avg_pool2d_backward(grad_out, self._saved())

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """``torch.nn.AdaptiveAvgPool2d``; ``output_size`` int, pair, or pair with ``None``.

    Shape:
        ``(N, C, H, W) -> (N, C, OH, OW)`` (batch-last: ``(C, H, W, N) -> (C, OH, OW, N)``).
    """

    accepts_batch_last = True

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.adaptive_avg_pool2d(x, self.output_size, self.batch_last)
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.adaptive_avg_pool2d_backward(grad_out, self._saved())

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
