"""``BatchNorm1d``, ``BatchNorm2d`` and ``LocalResponseNorm``."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.scratch.functional import norm as F
from cnnlab.scratch.nn.functional_layer import FunctionalLayer, WeightedLayer
from cnnlab.scratch.nn.parameter import Parameter


class _BatchNorm(WeightedLayer):
    """Shared body of the batch norms: PyTorch's parameters, buffers and update rule.

    State keys: ``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``.
    ``momentum=None`` gives the cumulative average (factor ``1 / num_batches_tracked``).

    Shape:
        see the subclasses.
    """

    _input_ndims: tuple[int, ...] = ()
    _layout: str = ""
    forward_fn, backward_fn = F.batch_norm, F.batch_norm_backward

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Check the input, count the batch (training with running statistics), normalise."""
        channels = x.shape[0 if self.batch_last else 1] if x.ndim > 1 else None
        if x.ndim not in self._input_ndims or channels != self.num_features:
            raise ValueError(
                f"expected input of shape {self._layout} with C={self.num_features}, "
                f"received shape {x.shape}"
            )
        if self._counts_batches:
            self.num_batches_tracked += 1  # in place: the 0-d buffer array stays the same object
        return super().forward(x)

    @property
    def _counts_batches(self) -> bool:
        """Whether this forward pass updates the running statistics."""
        return self.training and self.track_running_stats

    def op_args(self) -> tuple[Any, ...]:
        """:func:`~cnnlab.scratch.functional.norm.batch_norm`'s arguments: batch statistics in
        training (or without running ones), and the running average's factor."""
        if self.momentum is not None:
            factor = self.momentum
        elif self._counts_batches:
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            factor = 0.0
        return (
            self.running_mean,
            self.running_var,
            self._array("weight"),
            self._array("bias"),
            self.training or not self.track_running_stats,
            factor,
            self.eps,
            self.batch_last,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over ``(N, C)`` or ``(N, C, L)`` (``torch.nn.BatchNorm1d``).

    Shape:
        ``(N, C)`` or ``(N, C, L)`` -> same.
    """

    _input_ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over ``(N, C, H, W)`` (``torch.nn.BatchNorm2d``).

    Shape:
        ``(N, C, H, W) -> (N, C, H, W)`` (or batch-last ``(C, H, W, N)``).
    """

    accepts_batch_last = True
    _input_ndims = (4,)

    @property
    def _layout(self) -> str:
        return "(C, H, W, N)" if self.batch_last else "(N, C, H, W)"


class LocalResponseNorm(FunctionalLayer):
    """``torch.nn.LocalResponseNorm(size, alpha, beta, k)`` across channels.

    Shape:
        ``(N, C, *) -> (N, C, *)``.
    """

    accepts_batch_last = True
    forward_fn, backward_fn = F.local_response_norm, F.local_response_norm_backward

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def op_args(self) -> tuple[Any, ...]:
        return (self.size, self.alpha, self.beta, self.k, self.batch_last)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
