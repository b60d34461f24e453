"""Shape and wiring ops: flatten/reshape, add, concatenate. Their backward passes are exact
re-shapings, sums and splits; fan-out gradients are summed by whoever owns the graph."""

from __future__ import annotations

import numpy as np


def flatten(x: np.ndarray, start_dim: int = 1, end_dim: int = -1) -> np.ndarray:
    """Merge axes ``start_dim..end_dim`` into one (``torch.flatten``).

    Shape:
        ``(N, C, H, W) -> (N, C*H*W)`` by default.
    """
    nd = x.ndim
    start, end = start_dim % nd, end_dim % nd
    return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])


def reshape_backward(grad_out: np.ndarray, in_shape: tuple[int, ...]) -> np.ndarray:
    """Backward of any reshape (flatten, view): reshape the error back.

    Shape:
        ``out_shape -> in_shape``.
    """
    return grad_out.reshape(in_shape)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise sum with broadcasting (residual connections).

    Shape:
        ``broadcast(a, b)``.
    """
    return a + b


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    lead = grad.ndim - len(shape)
    if lead:
        grad = grad.sum(axis=tuple(range(lead)))
    stretched = tuple(a for a, s in enumerate(shape) if s == 1 and grad.shape[a] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def add_backward(
    grad_out: np.ndarray, a_shape: tuple[int, ...], b_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Both operands receive the error (summed over broadcast axes).

    Shape:
        ``broadcast(a, b) -> (a_shape, b_shape)``.
    """
    return unbroadcast(grad_out, a_shape), unbroadcast(grad_out, b_shape)


def concatenate(arrays: list[np.ndarray], axis: int = 1) -> np.ndarray:
    """``torch.cat`` (channel axis by default, e.g. Inception branches).

    Shape:
        ``[(N, C_i, H, W)] -> (N, sum(C_i), H, W)``.
    """
    return np.concatenate(arrays, axis=axis)


def concatenate_backward(grad_out: np.ndarray, sizes: list[int], axis: int = 1) -> list[np.ndarray]:
    """Split the error back into the pieces' sizes along ``axis``.

    Shape:
        ``(N, sum(C_i), H, W) -> [(N, C_i, H, W)]``.
    """
    return np.split(grad_out, np.cumsum(sizes)[:-1], axis=axis)


def pad_pairs(ndim: int, pad: tuple[int, ...] | list[int]) -> list[tuple[int, int]]:
    """torch's ``F.pad`` order (last axis first: ``(left, right, top, bottom, ...)``) as one
    ``(before, after)`` pair per axis, first axis first."""
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ValueError(
            f"expected an even number of pad sizes, at most 2 per axis of a {ndim}-d input, "
            f"received pad={tuple(pad)}"
        )
    pairs = [(0, 0)] * ndim
    for k in range(len(pad) // 2):
        pairs[ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    return pairs


def torch_pad_order(pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    """The inverse of :func:`pad_pairs`: one ``(before, after)`` pair per axis, first axis
    first, in ``F.pad``'s order (last axis first)."""
    return tuple(size for pair in reversed(pairs) for size in pair)


def _pad_or_crop(x: np.ndarray, pairs: list[tuple[int, int]], value: float) -> np.ndarray:
    """Pad by the positive amounts, then crop by the negative ones (as ``F.pad`` allows)."""
    if any(b > 0 or a > 0 for b, a in pairs):
        x = np.pad(x, [(max(b, 0), max(a, 0)) for b, a in pairs], constant_values=value)
    crop = tuple(slice(max(-b, 0), x.shape[i] - max(-a, 0)) for i, (b, a) in enumerate(pairs))
    return x[crop]


def pad(x: np.ndarray, pad: tuple[int, ...] | list[int], value: float = 0.0) -> np.ndarray:
    """Constant padding with ``torch.nn.functional.pad``'s argument order; negative sizes crop.

    Shape:
        ``(*, D_k, ...) -> (*, D_k + before_k + after_k, ...)``.
    """
    return np.ascontiguousarray(_pad_or_crop(x, pad_pairs(x.ndim, pad), value))


def pad_backward(grad_out: np.ndarray, pad: tuple[int, ...] | list[int]) -> np.ndarray:
    """The error of the kept region (and zeros where the forward pass cropped).

    Shape:
        ``padded shape -> input shape``.
    """
    pairs = pad_pairs(grad_out.ndim, pad)
    return np.ascontiguousarray(_pad_or_crop(grad_out, [(-b, -a) for b, a in pairs], 0.0))


def getitem_backward(grad_out: np.ndarray, in_shape: tuple[int, ...], index: object) -> np.ndarray:
    """Backward of ``x[index]`` for basic indexing (ints, slices with steps, ``...``, ``None``):
    the error lands where the elements came from, zeros elsewhere (forward is just
    ``x[index]``).

    Shape:
        ``x[index].shape -> in_shape``.
    """
    grad = np.zeros(in_shape, dtype=grad_out.dtype)
    grad[index] = grad_out  # type: ignore[index]
    return grad
