"""``Dropout`` layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.scratch.functional.dropout import dropout, dropout_backward
from cnnlab.scratch.nn.functional_layer import FunctionalLayer


class Dropout(FunctionalLayer):
    """Inverted dropout, active only in ``train()`` mode, drawing masks from its own generator.

    Args:
        p: drop probability.
        inplace: accepted for signature parity, ignored.
        rng: the mask generator (pass a seeded one for reproducible runs).

    Shape:
        ``(*) -> (*)``.
    """

    elementwise = True
    forward_fn, backward_fn = dropout, dropout_backward

    def __init__(
        self, p: float = 0.5, inplace: bool = False, rng: np.random.Generator | None = None
    ) -> None:
        super().__init__()
        self.p, self.inplace = p, inplace
        self.rng = rng if rng is not None else np.random.default_rng()

    def op_args(self) -> tuple[Any, ...]:
        return (self.p, self.training, self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
