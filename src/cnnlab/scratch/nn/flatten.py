"""``Flatten`` layer."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional.tensor import flatten, reshape_backward
from cnnlab.scratch.nn.module import Module


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` (``torch.nn.Flatten``).

    Shape:
        ``(N, C, H, W) -> (N, C*H*W)`` by default.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._save_for_backward(x.shape)
        return flatten(x, self.start_dim, self.end_dim)

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return reshape_backward(grad_out, self._saved())
