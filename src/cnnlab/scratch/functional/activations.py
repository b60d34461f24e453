"""Element-wise activations. Each backward takes what its forward cached (input or output)."""

from __future__ import annotations

import numpy as np


def relu(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max(x, 0)``; caches the output (its derivative is ``out > 0``, 0 at 0 as PyTorch).

    Shape:
        ``(*) -> (*)``.
    """
    out = np.maximum(x, 0)
    return out, out


def relu_backward(grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Shape: ``(*) -> (*)``."""
    return grad_out * (out > 0)


def leaky_relu(x: np.ndarray, negative_slope: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """``x if x > 0 else negative_slope * x``; caches the input.

    Shape:
        ``(*) -> (*)``.
    """
    return np.where(x > 0, x, x * negative_slope), x


def leaky_relu_backward(
    grad_out: np.ndarray, x: np.ndarray, negative_slope: float = 0.01
) -> np.ndarray:
    """Slope 1 for ``x > 0``, ``negative_slope`` otherwise (including 0, as PyTorch).

    Shape:
        ``(*) -> (*)``.
    """
    return np.where(x > 0, grad_out, grad_out * negative_slope)


def sigmoid(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``1 / (1 + exp(-x))``, computed without overflow; caches the output.

    Shape:
        ``(*) -> (*)``.
    """
    e = np.exp(-np.abs(x))  # in (0, 1], never overflows
    out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return out, out


def sigmoid_backward(grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``grad * y * (1 - y)``. Shape: ``(*) -> (*)``."""
    return grad_out * out * (1 - out)


def tanh(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hyperbolic tangent; caches the output.

    Shape:
        ``(*) -> (*)``.
    """
    out = np.tanh(x)
    return out, out


def tanh_backward(grad_out: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``grad * (1 - y**2)``. Shape: ``(*) -> (*)``."""
    return grad_out * (1 - out * out)
