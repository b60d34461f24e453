"""PyTorch's default initialisation of Conv2d/Linear (``reset_parameters``), from a NumPy
generator: ``kaiming_uniform_(a=sqrt(5))`` for weights, which is ``U(-1/sqrt(fan_in),
1/sqrt(fan_in))``, and the same bound for biases. Same distribution as PyTorch, not the same
random stream (the bridge copies weights when both engines must start equal)."""

from __future__ import annotations

import math

import numpy as np


def uniform_fan_in(
    shape: tuple[int, ...], fan_in: int, rng: np.random.Generator, dtype: np.dtype | type
) -> np.ndarray:
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` of the given shape and dtype."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype, copy=False)
