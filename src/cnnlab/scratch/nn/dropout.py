"""``Dropout`` layer."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional.dropout import dropout, dropout_backward
from cnnlab.scratch.nn.module import Module


class Dropout(Module):
    """Inverted dropout, active only in ``train()`` mode, drawing masks from its own generator.

    Args:
        p: drop probability.
        inplace: accepted for signature parity, ignored.
        rng: the mask generator (pass a seeded one for reproducible runs).

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True

    def __init__(
        self, p: float = 0.5, inplace: bool = False, rng: np.random.Generator | None = None
    ) -> None:
        super().__init__()
        self.p, self.inplace = p, inplace
        self.rng = rng if rng is not None else np.random.default_rng()

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, mask = dropout(x, self.p, self.training, self.rng)
        self._save_for_backward(mask)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return dropout_backward(grad_out, self._saved())

    def extra_repr(self) -> str:
        return f"p={self.p}"
