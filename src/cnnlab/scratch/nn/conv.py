"""``Conv2d`` layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.scratch.functional._utils import Pair, as_pair
from cnnlab.scratch.functional.conv import conv2d, conv2d_backward
from cnnlab.scratch.nn.functional_layer import WeightedLayer


class Conv2d(WeightedLayer):
    """2-D convolution with ``torch.nn.Conv2d``'s signature, initialisation and state keys
    (``weight``, ``bias``).

    Args:
        in_channels: input channels ``C``.
        out_channels: filters ``O``.
        kernel_size: int or ``(kh, kw)``.
        stride: int or pair.
        padding: int, pair, ``"valid"`` or ``"same"``.
        dilation: int or pair.
        groups: channel groups.
        bias: learn a per-filter bias.
        padding_mode: only ``"zeros"`` is supported.
        dtype: parameter dtype (float32 by default).
        rng: generator for the initial weights.

    Shape:
        ``(N, C, H, W) -> (N, O, OH, OW)`` (batch-last: ``(C, H, W, N) -> (O, OH, OW, N)``).
    """

    accepts_batch_last = True
    forward_fn, backward_fn = conv2d, conv2d_backward

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        stride: int | Pair = 1,
        padding: int | Pair | str = 0,
        dilation: int | Pair = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(
                f"expected padding_mode='zeros', received padding_mode={padding_mode!r}"
            )
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"expected channels divisible by groups, received in_channels={in_channels}, "
                f"out_channels={out_channels}, groups={groups}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride, self.dilation = as_pair(stride, "stride"), as_pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else as_pair(padding, "padding")
        self.groups = groups
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        self._init_fan_in(
            (out_channels, in_channels // groups, *self.kernel_size), fan_in, bias, dtype, rng
        )

    def op_args(self) -> tuple[Any, ...]:
        return (
            self.weight.data,
            self._array("bias"),
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.batch_last,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, bias={self.bias is not None}"
        )
