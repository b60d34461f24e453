"""``FunctionalLayer`` and ``WeightedLayer``: a layer that is one op of
:mod:`cnnlab.scratch.functional` and its backward, written once for every such layer.

An op there is a pair ``op(x, *args) -> (out, cache)`` and ``op_backward(grad_out, cache)`` (with
``needs_input_grad`` and parameter gradients for the ops of layers with weights). A
layer names its pair as the class attributes ``forward_fn`` and ``backward_fn`` (plain functions,
looked up on the class) and says what else the op takes (:meth:`FunctionalLayer.op_args`: its
hyper-parameters, arrays and layout); its ``forward`` and ``backward`` are then these classes'.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from cnnlab.scratch.nn.init import uniform_fan_in
from cnnlab.scratch.nn.module import Module
from cnnlab.scratch.nn.parameter import Parameter


class FunctionalLayer(Module):
    """A parameter-free layer computed by ``forward_fn`` and differentiated by ``backward_fn``.

    ``forward`` runs ``forward_fn(x, *self.op_args())`` and keeps the cache it returns;
    ``backward`` hands that cache to ``backward_fn(grad_out, cache)``.

    Shape:
        the op's.
    """

    #: ``(x, *op_args) -> (out, cache)``.
    forward_fn: ClassVar[Callable[..., tuple[Any, Any]]]
    #: ``(grad_out, cache) -> grad_x``.
    backward_fn: ClassVar[Callable[..., Any]]

    def op_args(self) -> tuple[Any, ...]:
        """What ``forward_fn`` takes after the input (none by default)."""
        return ()

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, cache = type(self).forward_fn(x, *self.op_args())
        self._save_for_backward(cache)
        return out

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        return type(self).backward_fn(grad_out, self._saved())


class WeightedLayer(FunctionalLayer):
    """A layer with ``weight`` and ``bias`` parameters (either may be absent: ``None``, as in
    PyTorch: ``bias=False``, ``affine=False``).

    ``backward_fn(grad_out, cache, needs_input_grad)`` returns ``(grad_x, grad_weight,
    grad_bias)``; ``backward`` adds the two parameter gradients into their ``.grad`` and
    returns ``grad_x``.

    Shape:
        the op's.
    """

    def backward(self, grad_out: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        grad_x, grad_w, grad_b = type(self).backward_fn(grad_out, self._saved(), needs_input_grad)
        self._accumulate_grads(weight=grad_w, bias=grad_b)
        return grad_x

    def _array(self, name: str) -> np.ndarray | None:
        """The array of parameter ``name``, or ``None`` when it is absent (``bias=False``,
        ``affine=False``)."""
        param = self._parameters[name]
        return None if param is None else param.data

    def _init_fan_in(
        self,
        weight_shape: tuple[int, ...],
        fan_in: int,
        bias: bool,
        dtype: np.dtype | type,
        rng: np.random.Generator | None,
    ) -> None:
        """PyTorch's ``reset_parameters`` of ``Conv2d`` and ``Linear``: ``weight`` of
        ``weight_shape``, then (if ``bias``) a bias of ``weight_shape[0]`` values, both drawn
        from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (:func:`~cnnlab.scratch.nn.init.uniform_fan_in`)
        in that order from ``rng`` (a fresh generator when ``None``)."""
        rng = rng if rng is not None else np.random.default_rng()
        self.weight = Parameter(uniform_fan_in(weight_shape, fan_in, rng, dtype))
        if bias:
            self.bias = Parameter(uniform_fan_in((weight_shape[0],), fan_in, rng, dtype))
        else:
            self.register_parameter("bias", None)
