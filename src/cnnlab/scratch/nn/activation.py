"""Activation layers: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``GELU`` (all shape
``(*) -> (*)``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.scratch.functional import activations as F
from cnnlab.scratch.nn.functional_layer import FunctionalLayer
from cnnlab.scratch.nn.module import Module


class ReLU(FunctionalLayer):
    """``max(x, 0)``. ``inplace`` is accepted for signature parity and ignored.

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True
    forward_fn, backward_fn = F.relu, F.relu_backward

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace


class LeakyReLU(FunctionalLayer):
    """``x if x > 0 else negative_slope * x``.

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True
    forward_fn, backward_fn = F.leaky_relu, F.leaky_relu_backward

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def op_args(self) -> tuple[Any, ...]:
        return (self.negative_slope,)

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.leaky_relu_backward(grad_out, self._saved(), self.negative_slope)


class Sigmoid(FunctionalLayer):
    """Logistic function.

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True
    forward_fn, backward_fn = F.sigmoid, F.sigmoid_backward


class Tanh(FunctionalLayer):
    """Hyperbolic tangent.

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True
    forward_fn, backward_fn = F.tanh, F.tanh_backward


class GELU(FunctionalLayer):
    """Gaussian error linear unit, exact (``approximate="none"``) or its tanh form.

    Shape:
        ``(*) -> (*)``.

    Raises:
        ValueError: ``approximate`` other than ``"none"`` or ``"tanh"``.
    """

    elementwise = True
    forward_fn, backward_fn = F.gelu, F.gelu_backward

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in F.GELU_APPROXIMATIONS:
            raise ValueError(f"approximate={approximate!r}")
        self.approximate = approximate

    def op_args(self) -> tuple[Any, ...]:
        return (self.approximate,)


class Identity(Module):
    """Returns its input (``torch.nn.Identity``, e.g. a removed classifier).

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return grad_out
