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
    channel_axis: int


def _channel_view(v: np.ndarray, ndim: int, channel_axis: int = 1) -> np.ndarray:
    """``(C,) -> (1, C, 1, ...)`` (or ``(C, 1, 1, 1)`` for ``channel_axis=0``), broadcastable
    against an ``ndim``-d array whose channels lie on ``channel_axis``."""
    shape = [1] * ndim
    shape[channel_axis] = -1
    return v.reshape(shape)


def batch_norm(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    batch_last: bool = False,
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch normalisation over every axis but the channel axis (``F.batch_norm``).

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
        batch_last: ``x`` is a batch-last ``(C, H, W, N)`` array (channels on axis 0).

    Returns:
        The output and the cache for :func:`batch_norm_backward`.

    Shape:
        ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)`` -> same shape; or ``(C, H, W, N)`` with
        ``batch_last``.
    """
    channel = 0 if batch_last else 1
    axes = tuple(a for a in range(x.ndim) if a != channel)
    batch_stats = training or running_mean is None or running_var is None

    def view(v: np.ndarray) -> np.ndarray:
        return _channel_view(v, x.ndim, channel)

    if batch_stats:
        m = x.size // x.shape[channel]
        if m <= 1:
            raise ValueError(
                f"expected more than 1 value per channel when training, received shape {x.shape}"
            )
        mean = x.mean(axis=axes)
        centred = x - view(mean)
        var = np.square(centred).mean(axis=axes)
        if training and running_mean is not None and running_var is not None:
            running_mean *= 1.0 - momentum
            running_mean += momentum * mean
            running_var *= 1.0 - momentum
            running_var += (momentum * m / (m - 1)) * var
    else:
        var = running_var.astype(x.dtype, copy=False)
        centred = x - view(running_mean.astype(x.dtype, copy=False))
    inv_std = view(1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
    x_hat = centred * inv_std
    out = x_hat
    if weight is not None:
        out = out * view(weight)
    if bias is not None:
        out = out + view(bias)
    return out, BatchNormCache(x_hat, inv_std, weight, batch_stats, channel)


def batch_norm_backward(
    grad_out: np.ndarray, cache: BatchNormCache, needs_input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm`: ``(grad_x, grad_weight, grad_bias)``; ``grad_x`` is
    ``None`` when ``needs_input_grad`` is ``False`` (e.g. for a first layer).

    With batch statistics the mean and variance depend on ``x``:
    ``grad_x = gamma * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))``;
    with running statistics it is just ``gamma * inv_std * g``.

    Shape:
        grad_out like ``x``; grad_weight and grad_bias ``(C,)``.
    """
    channel, ndim = cache.channel_axis, grad_out.ndim
    axes = tuple(a for a in range(ndim) if a != channel)
    grad_b = grad_out.sum(axis=axes)
    grad_w = (grad_out * cache.x_hat).sum(axis=axes)
    if not needs_input_grad:
        return None, grad_w, grad_b
    scale = cache.inv_std
    if cache.weight is not None:
        scale = scale * _channel_view(cache.weight, ndim, channel)
    if not cache.batch_stats:
        return grad_out * scale, grad_w, grad_b
    m = grad_out.size // grad_out.shape[channel]
    g_mean = _channel_view(grad_b / m, ndim, channel)
    gx_mean = _channel_view(grad_w / m, ndim, channel)
    grad_x = scale * (grad_out - g_mean - cache.x_hat * gx_mean)
    return grad_x, grad_w, grad_b


def _channel_window_sum(a: np.ndarray, before: int, after: int, axis: int = 1) -> np.ndarray:
    """``s[c] = sum(a[c - before : c + after + 1])`` along the channel ``axis`` (zero outside),
    via a cumulative sum.

    Shape:
        same as ``a``.
    """
    c = a.shape[axis]
    zeros_shape = list(a.shape)
    zeros_shape[axis] = 1
    csum = np.concatenate([np.zeros(zeros_shape, a.dtype), np.cumsum(a, axis=axis)], axis=axis)
    hi = np.minimum(np.arange(c) + after + 1, c)  # csum[i] = sum(a[:i]) along the axis
    lo = np.maximum(np.arange(c) - before, 0)
    return np.take(csum, hi, axis=axis) - np.take(csum, lo, axis=axis)


@dataclass
class LocalResponseNormCache:
    """Input, ``b = k + alpha/size * window_sum(x**2)`` and the output."""

    x: np.ndarray
    base: np.ndarray
    out: np.ndarray
    size: int
    alpha: float
    beta: float
    channel_axis: int


def local_response_norm(
    x: np.ndarray,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 1.0,
    batch_last: bool = False,
) -> tuple[np.ndarray, LocalResponseNormCache]:
    """Local response normalisation across channels (``torch.nn.LocalResponseNorm``).

    ``out[:, c] = x[:, c] / (k + alpha / size * sum(x[:, c'] ** 2)) ** beta`` over
    ``c' in [c - size // 2, c + (size - 1) // 2]`` (zero-padded; the divisor is always ``size``,
    as PyTorch's avg-pool implementation counts padding).

    Shape:
        ``(N, C, *) -> (N, C, *)``; with ``batch_last``, ``(C, H, W, N) -> (C, H, W, N)``.
    """
    channel = 0 if batch_last else 1
    sq_sum = _channel_window_sum(x * x, size // 2, (size - 1) // 2, channel)
    base = k + (alpha / size) * sq_sum
    out = x * base**-beta
    return out, LocalResponseNormCache(x, base, out, size, alpha, beta, channel)


def local_response_norm_backward(grad_out: np.ndarray, cache: LocalResponseNormCache) -> np.ndarray:
    """``g * b**-beta - 2*alpha*beta/size * x * window_sum'(g * out / b)``.

    The transposed window (channel ``j`` feeds outputs ``c`` with ``j`` in ``c``'s window) runs
    ``(size - 1) // 2`` channels before and ``size // 2`` after.

    Shape:
        ``(N, C, *) -> (N, C, *)`` (or batch-last, as the forward pass).
    """
    x, base, size = cache.x, cache.base, cache.size
    t = grad_out * cache.out / base
    spread = _channel_window_sum(t, (size - 1) // 2, size // 2, cache.channel_axis)
    return grad_out * base**-cache.beta - (2.0 * cache.alpha * cache.beta / size) * x * spread
