"""A trainable array and its accumulated gradient."""

from __future__ import annotations

import numpy as np


class Parameter:
    """``data`` plus ``grad`` (``None`` until a backward pass reaches it), like ``nn.Parameter``.

    Gradients *accumulate*: :meth:`accumulate_grad` adds with ``+=``, so a parameter (or a
    tensor) used twice receives the sum of both contributions. Optimizers skip parameters whose
    ``grad`` is ``None``; ``requires_grad=False`` freezes it (backward leaves ``grad`` alone).
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data: np.ndarray, requires_grad: bool = True) -> None:
        self.data = np.ascontiguousarray(data)
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """``self.grad += grad``. The first gradient is kept as it is when it is an array of
        its own in this parameter's dtype and layout (backward functions return fresh
        arrays, which nothing else holds), else copied: a view is never kept."""
        if not self.requires_grad:
            return
        if self.grad is not None:
            self.grad += grad
        elif _fresh(grad, self.data):
            self.grad = grad
        else:
            self.grad = np.array(grad, dtype=self.data.dtype, copy=True)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


def _fresh(grad: np.ndarray, like: np.ndarray) -> bool:
    """``grad`` owns its memory (no view of another array) and has ``like``'s dtype and shape,
    C-contiguous and writeable: it can become a ``.grad`` without a copy."""
    return (
        isinstance(grad, np.ndarray)
        and grad.flags.owndata
        and grad.flags.c_contiguous
        and grad.flags.writeable
        and grad.dtype == like.dtype
        and grad.shape == like.shape
    )
