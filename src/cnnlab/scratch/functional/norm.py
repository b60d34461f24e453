"""Batch normalisation and local response normalisation, as PyTorch defines them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BatchNormCache:
    """Normalised input, ``1/sqrt(var + eps)`` per channel, and whether batch stats were used."""

    x_hat: np.ndarray
    inv_std: np.ndarray  # broadcastable to x
    weight: np.ndarray | None
    batch_stats: bool
    axes: tuple[int, ...]


def _channel_view(v: np.ndarray, ndim: int) -> np.ndarray:
    """``(C,) -> (1, C, 1, ...)`` broadcastable against an ``ndim``-d ``(N, C, ...)`` array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def batch_norm(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch normalisation over every axis but the channel axis 1 (``F.batch_norm``).

    In training (or without running statistics) it normalises with the batch mean and the
    *biased* batch variance, and updates the running statistics in place as PyTorch does:
    ``running = (1 - momentum) * running + momentum * batch``, with the *unbiased* variance
    ``var * M / (M - 1)`` (``M`` values per channel). In evaluation it uses the running ones.

    Args:
        x: input.
        running_mean: ``(C,)``, updated in place when training; or ``None``.
        running_var: ``(C,)``, updated in place when training; or ``None``.
        weight: ``(C,)`` scale (gamma) or ``None``.
        bias: ``(C,)`` shift (beta) or ``None``.
        training: use (and accumulate) batch statistics.
        momentum: running-average factor (PyTorch's convention, not Keras's).
        eps: added to the variance (PyTorch's default 1e-5).

    Returns:
        The output and the cache for :func:`batch_norm_backward`.

    Shape:
        ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` -> same shape.
    """
    axes = (0, *range(2, x.ndim))
    batch_stats = training or running_mean is None or running_var is None
    if batch_stats:
        m = x.size // x.shape[1]
        if m <= 1:
            raise ValueError(
                f"expected more than 1 value per channel when training, received shape {x.shape}"
            )
        mean = x.mean(axis=axes)
        centred = x - _channel_view(mean, x.ndim)
        var = np.square(centred).mean(axis=axes)
        if training and running_mean is not None and running_var is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
            running_var *= 1.0 - momentum
            running_var += (momentum * m / (m - 1)) * var
    else:
        var = running_var.astype(x.dtype, copy=False)
        centred = x - _channel_view(running_mean.astype(x.dtype, copy=False), x.ndim)
    inv_std = _channel_view(1.0 / np.sqrt(var + eps), x.ndim).astype(x.dtype, copy=False)
    x_hat = centred * inv_std
    out = x_hat
    if weight is not None:
        out = out * _channel_view(weight, x.ndim)
    if bias is not None:
        out = out + _channel_view(bias, x.ndim)
    return out, BatchNormCache(x_hat, inv_std, weight, batch_stats, axes)


def batch_norm_backward(
    grad_out: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm`: ``(grad_x, grad_weight, grad_bias)``.

    With batch statistics the mean and variance depend on ``x``:
    ``grad_x = gamma * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))``;
    with running statistics it is just ``gamma * inv_std * g``.

    Shape:
        grad_out like ``x``; grad_weight and grad_bias ``(C,)``.
    """
    axes, ndim = cache.axes, grad_out.ndim
    grad_b = grad_out.sum(axis=axes)
    grad_w = (grad_out * cache.x_hat).sum(axis=axes)
    scale = cache.inv_std
    if cache.weight is not None:
        scale = scale * _channel_view(cache.weight, ndim)
    if not cache.batch_stats:
        return grad_out * scale, grad_w, grad_b
    m = grad_out.size // grad_out.shape[1]
    g_mean = _channel_view(grad_b / m, ndim)
    gx_mean = _channel_view(grad_w / m, ndim)
    grad_x = scale * (grad_out - g_mean - cache.x_hat * gx_mean)
    return grad_x, grad_w, grad_b


def _channel_window_sum(a: np.ndarray, before: int, after: int) -> np.ndarray:
    """``s[:, c] = sum(a[:, c - before : c + after + 1])`` (zero outside), via a cumulative sum.

    Shape:
        ``(N, C, ...) -> (N, C, ...)``.
    """
    c = a.shape[1]
    zeros = np.zeros((a.shape[0], 1, *a.shape[2:]), dtype=a.dtype)
    csum = np.concatenate([zeros, np.cumsum(a, axis=1)], axis=1)  # csum[:, i] = sum(a[:, :i])
    hi = np.minimum(np.arange(c) + after + 1, c)
    lo = np.maximum(np.arange(c) - before, 0)
    return csum[:, hi] - csum[:, lo]


@dataclass
class LocalResponseNormCache:
    """Input, ``b = k + alpha/size * window_sum(x**2)`` and the output."""

    x: np.ndarray
    base: np.ndarray
    out: np.ndarray
    size: int
    alpha: float
    beta: float


def local_response_norm(
    x: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> tuple[np.ndarray, LocalResponseNormCache]:
    """Local response normalisation across channels (``torch.nn.LocalResponseNorm``).

    ``out[:, c] = x[:, c] / (k + alpha / size * sum(x[:, c'] ** 2)) ** beta`` over
    ``c' in [c - size // 2, c + (size - 1) // 2]`` (zero-padded; the divisor is always ``size``,
    as PyTorch's avg-pool implementation counts padding).

    Shape:
        ``(N, C, *) -> (N, C, *)``.
    """
    sq_sum = _channel_window_sum(x * x, size // 2, (size - 1) // 2)
    base = k + (alpha / size) * sq_sum
    out = x * base**-beta
    return out, LocalResponseNormCache(x, base, out, size, alpha, beta)


def local_response_norm_backward(grad_out: np.ndarray, cache: LocalResponseNormCache) -> np.ndarray:
    """``g * b**-beta - 2*alpha*beta/size * x * window_sum'(g * out / b)``.

    The transposed window (channel ``j`` feeds outputs ``c`` with ``j`` in ``c``'s window) runs
    ``(size - 1) // 2`` channels before and ``size // 2`` after.

    Shape:
        ``(N, C, *) -> (N, C, *)``.
    """
    x, base, size = cache.x, cache.base, cache.size
    t = grad_out * cache.out / base
    spread = _channel_window_sum(t, (size - 1) // 2, size // 2)
    return grad_out * base**-cache.beta - (2.0 * cache.alpha * cache.beta / size) * x * spread
