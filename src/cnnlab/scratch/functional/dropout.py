"""Inverted dropout: zero with probability p, scale survivors by 1/(1-p) at training time."""

from __future__ import annotations

import numpy as np


def dropout(
    x: np.ndarray, p: float, training: bool, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray | None]:
    """Randomly zero elements (``torch.nn.functional.dropout``, not its random stream).

    Args:
        x: input.
        p: drop probability in ``[0, 1]``.
        training: identity when ``False``.
        rng: the generator that draws the mask (seed it for reproducibility).

    Returns:
        The output and the scaled keep-mask (``None`` when the op was the identity).

    Shape:
        ``(*) -> (*)``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"expected dropout probability in [0, 1], received p={p}")
    if not training or p == 0.0:
        return x, None
    if p == 1.0:
        mask = np.zeros_like(x)
    else:
        mask = (rng.random(x.shape, dtype=np.float32) >= p).astype(x.dtype) * (1.0 / (1.0 - p))
    return x * mask, mask


def dropout_backward(grad_out: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Shape: ``(*) -> (*)``."""
    return grad_out if mask is None else grad_out * mask
