"""Fully connected layer: ``y = x @ W.T + b`` (``torch.nn.functional.linear``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class LinearCache:
    """The input (flattened to 2-D) and the weight."""

    x2d: np.ndarray
    weight: np.ndarray
    has_bias: bool
    x_shape: tuple[int, ...]


def linear(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
) -> tuple[np.ndarray, LinearCache]:
    """Affine map of the last axis.

    Args:
        x: input.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or ``None``.

    Returns:
        The output and the cache for :func:`linear_backward`.

    Shape:
        ``(*, in_features) -> (*, out_features)``.
    """
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"expected input with {weight.shape[1]} features in the last axis, "
            f"received shape {x.shape}"
        )
    x2d = x.reshape(-1, x.shape[-1])  # (M, in)
    out = x2d @ weight.T  # (M, out)
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:-1], weight.shape[0]), LinearCache(
        x2d, weight, bias is not None, x.shape
    )


def linear_backward(
    grad_out: np.ndarray, cache: LinearCache, needs_input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`linear`: ``(grad_x, grad_weight, grad_bias)``.

    Shape:
        - grad_out: ``(*, out_features)``
        - grad_x: ``(*, in_features)``; grad_weight: ``(out, in)``; grad_bias: ``(out,)``
    """
    g2d = grad_out.reshape(-1, grad_out.shape[-1])  # (M, out)
    grad_w = g2d.T @ cache.x2d
    grad_b = g2d.sum(axis=0) if cache.has_bias else None
    grad_x = (g2d @ cache.weight).reshape(cache.x_shape) if needs_input_grad else None
    return grad_x, grad_w, grad_b
