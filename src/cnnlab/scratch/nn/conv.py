"""``Conv2d`` layer."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional._utils import Pair, as_pair
from cnnlab.scratch.functional.conv import conv2d, conv2d_backward
from cnnlab.scratch.nn.init import uniform_fan_in
from cnnlab.scratch.nn.module import Module
from cnnlab.scratch.nn.parameter import Parameter


class Conv2d(Module):
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
        rng = rng if rng is not None else np.random.default_rng()
        fan_in = in_channels // groups * self.kernel_size[0] * self.kernel_size[1]
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(uniform_fan_in(shape, fan_in, rng, dtype))
        if bias:
            self.bias = Parameter(uniform_fan_in((out_channels,), fan_in, rng, dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: np.ndarray) -> np.ndarray:
        bias = None if self.bias is None else self.bias.data
        out, cache = conv2d(
            x,
            self.weight.data,
            bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.batch_last,
        )
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        grad_x, grad_w, grad_b = conv2d_backward(grad_out, self._saved(), needs_input_grad)
        self._accumulate_grads(weight=grad_w, bias=grad_b)
        return grad_x

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, bias={self.bias is not None}"
        )
