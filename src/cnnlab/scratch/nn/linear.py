"""``Linear`` layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.scratch.functional.linear import linear, linear_backward
from cnnlab.scratch.nn.functional_layer import WeightedLayer


class Linear(WeightedLayer):
    """Fully connected layer (``torch.nn.Linear``: ``weight`` ``(out, in)``, ``bias``).

    Shape:
        ``(*, in_features) -> (*, out_features)``.
    """

    forward_fn, backward_fn = linear, linear_backward

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_fan_in((out_features, in_features), in_features, bias, dtype, rng)

    def op_args(self) -> tuple[Any, ...]:
        return (self.weight.data, self._array("bias"))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
