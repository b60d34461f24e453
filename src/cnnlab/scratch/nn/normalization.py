"""``BatchNorm1d``, ``BatchNorm2d`` and ``LocalResponseNorm``."""

from __future__ import annotations

import numpy as np

from cnnlab.scratch.functional import norm as F
from cnnlab.scratch.nn.module import Module
from cnnlab.scratch.nn.parameter import Parameter


class _BatchNorm(Module):
    """Shared body of the batch norms: PyTorch's parameters, buffers and update rule.

    State keys: ``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``.
    ``momentum=None`` gives the cumulative average (factor ``1 / num_batches_tracked``).
    """

    _input_ndims: tuple[int, ...] = ()
    _layout: str = ""

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
        channels = x.shape[0 if self.batch_last else 1] if x.ndim > 1 else None
        if x.ndim not in self._input_ndims or channels != self.num_features:
            raise ValueError(
                f"expected input of shape {self._layout} with C={self.num_features}, "
                f"received shape {x.shape}"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1  # in place: the 0-d buffer array stays the same object
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or not self.track_running_stats
        out, cache = F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            None if self.weight is None else self.weight.data,
            None if self.bias is None else self.bias.data,
            training=use_batch,
            momentum=factor,
            eps=self.eps,
            batch_last=self.batch_last,
        )
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        grad_x, grad_w, grad_b = F.batch_norm_backward(grad_out, self._saved())
        self._accumulate_grads(weight=grad_w, bias=grad_b)
        return grad_x

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


class LocalResponseNorm(Module):
    """``torch.nn.LocalResponseNorm(size, alpha, beta, k)`` across channels.

    Shape:
        ``(N, C, *) -> (N, C, *)``.
    """

    accepts_batch_last = True

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = F.local_response_norm(
            x, self.size, self.alpha, self.beta, self.k, self.batch_last
        )
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return F.local_response_norm_backward(grad_out, self._saved())

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
