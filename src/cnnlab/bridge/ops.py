"""The dictionary between torch and scratch: torch layers -> scratch layers, torch functions ->
scratch graph ops. Everything the NumPy engine can run is listed here, keyed by type or function
object (never by name strings); anything else raises :class:`UnsupportedOpError` naming it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import UnsupportedOpError
from cnnlab.scratch import nn as snn
from cnnlab.scratch.graph_ops import AddOp, CatOp, GetItemOp, IdentityOp, LayerOp, Op, PadOp

LayerFactory = Callable[[Any, np.dtype, np.random.Generator], snn.Module]


class _NoInit:
    """Stands in for the generator of a layer's initial weights, which the bridge overwrites
    with the torch model's at once: zeros are free, random numbers for 100M weights are not."""

    def uniform(self, low: float, high: float, size: tuple[int, ...]) -> np.ndarray:
        return np.zeros(size)


_NO_INIT: Any = _NoInit()


def _conv(m: nn.Conv2d, dtype: np.dtype, rng: np.random.Generator) -> snn.Module:
    if m.padding_mode != "zeros":
        raise ValueError(f"padding_mode={m.padding_mode!r}")
    return snn.Conv2d(
        m.in_channels,
        m.out_channels,
        m.kernel_size,
        m.stride,
        m.padding,
        m.dilation,
        m.groups,
        m.bias is not None,
        dtype=dtype,
        rng=_NO_INIT,
    )


def _batch_norm(kind: type) -> LayerFactory:
    def make(m: nn.modules.batchnorm._BatchNorm, dtype: np.dtype, rng: Any) -> snn.Module:
        return kind(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, dtype)

    return make


#: torch layer type -> scratch layer with the same hyper-parameters (weights copied later).
LAYERS: dict[type[nn.Module], LayerFactory] = {
    nn.Conv2d: _conv,
    nn.Linear: lambda m, dtype, rng: snn.Linear(
        m.in_features, m.out_features, m.bias is not None, dtype=dtype, rng=_NO_INIT
    ),
    nn.BatchNorm1d: _batch_norm(snn.BatchNorm1d),
    nn.BatchNorm2d: _batch_norm(snn.BatchNorm2d),
    nn.ReLU: lambda m, dtype, rng: snn.ReLU(),
    nn.LeakyReLU: lambda m, dtype, rng: snn.LeakyReLU(m.negative_slope),
    nn.Sigmoid: lambda m, dtype, rng: snn.Sigmoid(),
    nn.Tanh: lambda m, dtype, rng: snn.Tanh(),
    nn.GELU: lambda m, dtype, rng: snn.GELU(m.approximate),
    nn.MaxPool2d: lambda m, dtype, rng: snn.MaxPool2d(
        m.kernel_size, m.stride, m.padding, m.dilation, m.return_indices, m.ceil_mode
    ),
    nn.AvgPool2d: lambda m, dtype, rng: snn.AvgPool2d(
        m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad, m.divisor_override
    ),
    nn.AdaptiveAvgPool2d: lambda m, dtype, rng: snn.AdaptiveAvgPool2d(m.output_size),
    nn.Dropout: lambda m, dtype, rng: snn.Dropout(m.p, rng=rng),
    nn.Flatten: lambda m, dtype, rng: snn.Flatten(m.start_dim, m.end_dim),
    nn.LocalResponseNorm: lambda m, dtype, rng: snn.LocalResponseNorm(m.size, m.alpha, m.beta, m.k),
    nn.Identity: lambda m, dtype, rng: snn.Identity(),
}


def convert_layer(
    module: nn.Module, name: str, dtype: np.dtype, rng: np.random.Generator
) -> snn.Module:
    """The scratch twin of a torch leaf layer (same hyper-parameters, freshly initialised).

    Raises:
        UnsupportedOpError: naming the layer type and its path.
    """
    factory = LAYERS.get(type(module))
    if factory is None:
        supported = ", ".join(sorted(t.__name__ for t in LAYERS))
        raise UnsupportedOpError(
            f"expected layers the NumPy engine supports ({supported}), received "
            f"{type(module).__name__} at layer {name}"
        )
    try:
        return factory(module, dtype, rng)
    except ValueError as exc:
        raise UnsupportedOpError(
            f"expected a {type(module).__name__} the NumPy engine supports, received {exc} at "
            f"layer {name}"
        ) from None


def layer_op(layer: snn.Module) -> Op:
    """The graph op that runs a converted layer."""
    return IdentityOp() if isinstance(layer, snn.Identity) else LayerOp(layer)


# ---- functions ---------------------------------------------------------------------------------
# Each builder gets the fx node's (args, kwargs) with the tensor arguments still fx Nodes, and
# returns the op and the tensor arguments it reads, in order.
Built = tuple[Op, list[fx.Node]]


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _add(args: tuple, kwargs: dict) -> Built:
    if kwargs.get("alpha", 1) != 1 or not all(isinstance(a, fx.Node) for a in args[:2]):
        raise ValueError("add of a tensor and a constant, or with alpha")
    return AddOp(), [args[0], args[1]]


def _cat(args: tuple, kwargs: dict) -> Built:
    tensors = list(_arg(args, kwargs, 0, "tensors", []))
    return CatOp(_arg(args, kwargs, 1, "dim", 0)), tensors


def _flatten(args: tuple, kwargs: dict) -> Built:
    start, end = _arg(args, kwargs, 1, "start_dim", 0), _arg(args, kwargs, 2, "end_dim", -1)
    return LayerOp(snn.Flatten(start, end)), [args[0]]


def _unary(make: Callable[[], snn.Module]) -> Callable[[tuple, dict], Built]:
    return lambda args, kwargs: (LayerOp(make()), [args[0]])


def _adaptive_avg_pool2d(args: tuple, kwargs: dict) -> Built:
    size = _arg(args, kwargs, 1, "output_size", None)
    return LayerOp(snn.AdaptiveAvgPool2d(size)), [args[0]]


def _getitem(args: tuple, kwargs: dict) -> Built:
    index = args[1]
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, fx.Node) for p in parts) or any(
        isinstance(p, slice) and any(isinstance(v, fx.Node) for v in (p.start, p.stop, p.step))
        for p in parts
    ):
        raise ValueError("indexing with a tensor-dependent index")
    return GetItemOp(index), [args[0]]


def _pad(args: tuple, kwargs: dict) -> Built:
    mode = _arg(args, kwargs, 2, "mode", "constant")
    if mode != "constant":
        raise ValueError(f"mode={mode!r}")
    value = _arg(args, kwargs, 3, "value", None)
    return PadOp(_arg(args, kwargs, 1, "pad", ()), 0.0 if value is None else value), [args[0]]


#: call_function targets and call_method names -> builders.
FUNCTIONS: dict[Any, Callable[[tuple, dict], Built]] = {
    operator.add: _add,
    operator.iadd: _add,
    torch.add: _add,
    "add": _add,
    "add_": _add,
    torch.cat: _cat,
    torch.flatten: _flatten,
    "flatten": _flatten,
    F.relu: _unary(snn.ReLU),
    torch.relu: _unary(snn.ReLU),
    "relu": _unary(snn.ReLU),
    torch.sigmoid: _unary(snn.Sigmoid),
    "sigmoid": _unary(snn.Sigmoid),
    torch.tanh: _unary(snn.Tanh),
    "tanh": _unary(snn.Tanh),
    F.gelu: lambda args, kwargs: (LayerOp(snn.GELU(kwargs.get("approximate", "none"))), [args[0]]),
    F.adaptive_avg_pool2d: _adaptive_avg_pool2d,
    operator.getitem: _getitem,
    F.pad: _pad,
}


def convert_function(node: fx.Node, where: str) -> Built:
    """The scratch op for a ``call_function`` / ``call_method`` node.

    Raises:
        UnsupportedOpError: naming the op and the layer it was called from.
    """
    target = node.target
    name = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    builder = FUNCTIONS.get(target)
    if builder is None:
        raise UnsupportedOpError(
            f"expected ops the NumPy engine supports, received op {name!r} in layer {where} "
            f"(fx node {node.name})"
        )
    try:
        return builder(node.args, dict(node.kwargs))
    except (ValueError, TypeError, IndexError) as exc:
        raise UnsupportedOpError(
            f"expected a form of {name!r} the NumPy engine supports, received {exc} in layer "
            f"{where} (fx node {node.name})"
        ) from None
