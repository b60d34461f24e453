"""``CrossEntropyLoss``: the loss a scratch training loop ends with."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional.losses import cross_entropy, cross_entropy_backward
from cnnlab.scratch.nn.module import Module


class CrossEntropyLoss(Module):
    """Mean softmax cross-entropy with PyTorch's ``label_smoothing``.

    ``forward(logits, target)`` returns the loss; ``backward()`` the logits' gradient.

    Shape:
        logits ``(N, K)``, target ``(N,)`` integers -> scalar.
    """

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing

    def forward(self, logits: np.ndarray, target: np.ndarray) -> float:  # type: ignore[override]
        loss, cache = cross_entropy(logits, target, self.label_smoothing)
        self._save_for_backward(cache)
        return loss

    def __call__(self, logits: np.ndarray, target: np.ndarray) -> float:  # type: ignore[override]
        return self.forward(logits, target)

    def backward(  # type: ignore[override]
        self, grad_out: float = 1.0, needs_input_grad: bool = True
    ) -> np.ndarray:
        return cross_entropy_backward(self._saved(), grad_out)

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"
