"""Softmax, log-softmax and cross-entropy (``torch.nn.functional.cross_entropy``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def log_softmax(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """``x - logsumexp(x)``, shifted by the max for stability; caches the output.

    Shape:
        ``(*) -> (*)``.
    """
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return out, out


def log_softmax_backward(grad_out: np.ndarray, out: np.ndarray, axis: int = -1) -> np.ndarray:
    """``g - softmax * sum(g)``. Shape: ``(*) -> (*)``."""
    return grad_out - np.exp(out) * grad_out.sum(axis=axis, keepdims=True)


def softmax(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """``exp(x) / sum(exp(x))`` along ``axis``; caches the output.

    Shape:
        ``(*) -> (*)``.
    """
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)
    return out, out


def softmax_backward(grad_out: np.ndarray, out: np.ndarray, axis: int = -1) -> np.ndarray:
    """``y * (g - sum(g * y))``. Shape: ``(*) -> (*)``."""
    return out * (grad_out - (grad_out * out).sum(axis=axis, keepdims=True))


@dataclass
class CrossEntropyCache:
    """Softmax probabilities and the smoothed one-hot targets."""

    probs: np.ndarray  # (N, K)
    target_dist: np.ndarray  # (N, K)


def cross_entropy(
    logits: np.ndarray, target: np.ndarray, label_smoothing: float = 0.0
) -> tuple[float, CrossEntropyCache]:
    """Mean softmax cross-entropy of class-index targets, with PyTorch's label smoothing.

    With smoothing ``e`` over ``K`` classes the target distribution is
    ``(1 - e) * one_hot + e / K``, so the loss is ``(1 - e) * nll + e * mean_k(-log p_k)``.

    Args:
        logits: unnormalised scores.
        target: class indices in ``[0, K)``.
        label_smoothing: ``e`` in ``[0, 1]``.

    Returns:
        The mean loss (a Python float) and the cache for :func:`cross_entropy_backward`.

    Shape:
        - logits: ``(N, K)``; target: ``(N,)`` integers
        - output: scalar.
    """
    if logits.ndim != 2 or target.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (N, K) and integer targets (N,), received logits {logits.shape} "
            f"and target {target.shape}"
        )
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"expected label_smoothing in [0, 1], received {label_smoothing}")
    n, k = logits.shape
    logp, _ = log_softmax(logits, axis=1)
    target_dist = np.full((n, k), label_smoothing / k, dtype=logits.dtype)
    target_dist[np.arange(n), target] += 1.0 - label_smoothing
    loss = -(target_dist * logp).sum() / n
    return float(loss), CrossEntropyCache(np.exp(logp), target_dist)


def cross_entropy_backward(cache: CrossEntropyCache, grad_loss: float = 1.0) -> np.ndarray:
    """``(softmax - target_dist) * grad_loss / N``.

    Shape:
        ``() -> (N, K)``.
    """
    n = cache.probs.shape[0]
    return (cache.probs - cache.target_dist) * (grad_loss / n)
