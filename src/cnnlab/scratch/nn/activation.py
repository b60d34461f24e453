"""Activation layers: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``GELU`` (all shape
``(*) -> (*)``)."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional import activations as F
from cnnlab.scratch.nn.module import Module


class ReLU(Module):
    """``max(x, 0)``. ``inplace`` is accepted for signature parity and ignored.

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.relu(x)
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.relu_backward(grad_out, self._saved())


class LeakyReLU(Module):
    """``x if x > 0 else negative_slope * x``.

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.leaky_relu(x, self.negative_slope)
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.leaky_relu_backward(grad_out, self._saved(), self.negative_slope)


class Sigmoid(Module):
    """Logistic function.

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.sigmoid(x)
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.sigmoid_backward(grad_out, self._saved())


class Tanh(Module):
    """Hyperbolic tangent.

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.tanh(x)
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.tanh_backward(grad_out, self._saved())


class GELU(Module):
    """Gaussian error linear unit, exact (``approximate="none"``) or its tanh form.

    Shape:
        ``(*) -> (*)``.

    Raises:
        ValueError: ``approximate`` other than ``"none"`` or ``"tanh"``.
    """

    elementwise = True

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in F.GELU_APPROXIMATIONS:
            raise ValueError(f"approximate={approximate!r}")
        self.approximate = approximate

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.gelu(x, self.approximate)
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.gelu_backward(grad_out, self._saved())


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
