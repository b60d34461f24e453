"""``Linear`` layer."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional.linear import linear, linear_backward
from cnnlab.scratch.nn.init import uniform_fan_in
from cnnlab.scratch.nn.module import Module
from cnnlab.scratch.nn.parameter import Parameter


class Linear(Module):
    """Fully connected layer (``torch.nn.Linear``: ``weight`` ``(out, in)``, ``bias``).

    Shape:
        ``(*, in_features) -> (*, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        rng = rng if rng is not None else np.random.default_rng()
        self.weight = Parameter(
            uniform_fan_in((out_features, in_features), in_features, rng, dtype)
        )
        if bias:
            self.bias = Parameter(uniform_fan_in((out_features,), in_features, rng, dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: np.ndarray) -> np.ndarray:
        bias = None if self.bias is None else self.bias.data
        out, cache = linear(x, self.weight.data, bias)
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        grad_x, grad_w, grad_b = linear_backward(grad_out, self._saved(), needs_input_grad)
        self._accumulate_grads(weight=grad_w, bias=grad_b)
        return grad_x

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
