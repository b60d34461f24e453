"""Element-wise activations. Each backward takes what its forward cached (input or output)."""

from __future__ import annotations

import math

import numpy as np

GELU_APPROXIMATIONS = ("none", "tanh")
_ERF = np.frompyfunc(math.erf, 1, 1)  # NumPy has no erf; math.erf is exact to ~1 ulp
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_CUBIC = 0.044715


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


def gelu(x: np.ndarray, approximate: str = "none") -> tuple[np.ndarray, tuple]:
    """Gaussian error linear unit ``x * Phi(x)`` (``torch.nn.functional.gelu``).

    ``approximate="none"``: ``Phi(x) = (1 + erf(x / sqrt(2))) / 2`` exactly (``math.erf`` per
    element: correct, not fast); ``"tanh"``: ``(1 + tanh(sqrt(2/pi) (x + 0.044715 x**3))) / 2``.
    Caches the input and ``Phi(x)`` (or the tanh).

    Shape:
        ``(*) -> (*)``.

    Raises:
        ValueError: another ``approximate``.
    """
    if approximate == "none":
        cdf = 0.5 * (1 + _ERF(x / math.sqrt(2)).astype(x.dtype))
        return x * cdf, (x, cdf, approximate)
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x**3))
        return 0.5 * x * (1 + t), (x, t, approximate)
    raise ValueError(f"approximate={approximate!r}, expected one of {GELU_APPROXIMATIONS}")


def gelu_backward(grad_out: np.ndarray, cache: tuple) -> np.ndarray:
    """``grad * (Phi(x) + x phi(x))`` with ``phi`` the normal density (exact form), or the
    derivative of the tanh form.

    Shape:
        ``(*) -> (*)``.
    """
    x, saved, approximate = cache
    if approximate == "none":
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return grad_out * (saved + x * pdf)
    inner = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)  # d/dx of tanh's argument
    return grad_out * (0.5 * (1 + saved) + 0.5 * x * (1 - saved * saved) * inner)
