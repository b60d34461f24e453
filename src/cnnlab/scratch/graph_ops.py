"""The ops a :class:`cnnlab.scratch.graph.Graph` node can run.

An op is ``forward(*inputs) -> (out, cache)`` and ``backward(grad_out, cache, needs) -> one
gradient per input`` (``None`` where ``needs`` says the input needs none). Parameter gradients
are not returned: layers add them into their parameters' ``.grad`` (``+=``) themselves.

Layout (:mod:`cnnlab.scratch.layout_plan`): :class:`ToBatchLastOp` and :class:`ToBatchFirstOp`
convert between ``(N, C, H, W)`` and ``(C, H, W, N)``; :class:`IdentityOp` and :class:`AddOp`
work in either layout; ops whose arguments name axes offer ``for_batch_last()``, the same op
for batch-last inputs (or ``None`` when it has none).

:class:`LayerOp` runs any scratch layer (:mod:`cnnlab.scratch.nn`) but keeps the layer's cache
in the *node*, not in the layer, so one layer object may be called by several nodes (a ReLU
module used twice in a residual block) and every call still has its own backward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from cnnlab.scratch.functional.layout import (
    batch_last_axis,
    batch_last_order,
    to_batch_first,
    to_batch_last,
)
from cnnlab.scratch.functional.tensor import (
    add_backward,
    concatenate,
    concatenate_backward,
    getitem_backward,
    pad,
    pad_backward,
    pad_pairs,
    torch_pad_order,
)
from cnnlab.scratch.nn.module import Module

Grads = tuple[np.ndarray | None, ...]


class Op(Protocol):
    """What a graph node runs."""

    def forward(self, *inputs: np.ndarray) -> tuple[np.ndarray, Any]: ...

    def backward(self, grad_out: np.ndarray, cache: Any, needs: Sequence[bool]) -> Grads: ...


class LayerOp:
    """A scratch layer as a graph op (its parameters live in the layer).

    Shape:
        whatever the layer does.
    """

    def __init__(self, layer: Module) -> None:
        self.layer = layer

    def forward(self, *inputs: np.ndarray) -> tuple[np.ndarray, Any]:
        (x,) = inputs
        out = self.layer.forward(x)
        return out, self.layer._saved()  # take the cache out of the layer, into the node

    def backward(self, grad_out: np.ndarray, cache: Any, needs: Sequence[bool]) -> Grads:
        self.layer._save_for_backward(cache)
        return (self.layer.backward(grad_out, needs_input_grad=needs[0]),)

    def __repr__(self) -> str:
        return repr(self.layer)


class IdentityOp:
    """Returns its input (``nn.Identity``).

    Shape:
        ``(*) -> (*)``.
    """

    def forward(self, *inputs: np.ndarray) -> tuple[np.ndarray, Any]:
        return inputs[0], None

    def backward(self, grad_out: np.ndarray, cache: Any, needs: Sequence[bool]) -> Grads:
        return (grad_out,)


class AddOp:
    """``a + b`` with broadcasting (residual connections).

    Shape:
        ``a, b -> broadcast(a, b)``.
    """

    def forward(self, *inputs: np.ndarray) -> tuple[np.ndarray, Any]:
        a, b = inputs
        return a + b, (a.shape, b.shape)

    def backward(self, grad_out: np.ndarray, cache: Any, needs: Sequence[bool]) -> Grads:
        return add_backward(grad_out, *cache)


class CatOp:
    """``torch.cat(inputs, dim)`` (Inception's branches).

    Shape:
        ``[(N, C_i, H, W)] -> (N, sum(C_i), H, W)`` for ``dim=1``.
    """

    def __init__(self, dim: int = 1) -> None:
        self.dim = dim

    def for_batch_last(self) -> CatOp | None:
        """The same concatenation of batch-last 4-d inputs."""
        return CatOp(batch_last_axis(self.dim)) if -4 <= self.dim < 4 else None

    def forward(self, *inputs: np.ndarray) -> tuple[np.ndarray, Any]:
        return concatenate(list(inputs), self.dim), [x.shape[self.dim] for x in inputs]

    def backward(self, grad_out: np.ndarray, cache: Any, needs: Sequence[bool]) -> Grads:
        return tuple(concatenate_backward(grad_out, cache, self.dim))


class GetItemOp:
    """``x[index]`` with basic indexing (ints, slices with steps, ``...``, ``None``).

    Shape:
        ``x.shape -> x[index].shape``.
    """

    def __init__(self, index: Any) -> None:
        self.index = index

    def for_batch_last(self) -> GetItemOp | None:
        """The same slicing of a batch-last 4-d input: only slices (and one ``...``), which keep
        the four axes, can be moved along with them."""
        parts = self.index if isinstance(self.index, tuple) else (self.index,)
        if parts.count(Ellipsis) > 1 or not all(
            p is Ellipsis or isinstance(p, slice) for p in parts
        ):
            return None
        if Ellipsis in parts:
            at = parts.index(Ellipsis)
            fill = (slice(None),) * (4 - len(parts) + 1)
            parts = parts[:at] + fill + parts[at + 1 :]
        if len(parts) > 4:
            return None
        return GetItemOp(batch_last_order(parts + (slice(None),) * (4 - len(parts))))

    def forward(self, *inputs: np.ndarray) -> tuple[np.ndarray, Any]:
        (x,) = inputs
        return np.ascontiguousarray(x[self.index]), x.shape

    def backward(self, grad_out: np.ndarray, cache: Any, needs: Sequence[bool]) -> Grads:
        return (getitem_backward(grad_out, cache, self.index),)


class PadOp:
    """Constant padding in ``torch.nn.functional.pad``'s argument order.

    Shape:
        ``(*, D_k) -> (*, D_k + before_k + after_k)``.
    """

    def __init__(self, pad: Sequence[int], value: float = 0.0) -> None:
        self.pad, self.value = tuple(pad), value

    def for_batch_last(self) -> PadOp | None:
        """The same padding of a batch-last 4-d input."""
        if len(self.pad) % 2 or len(self.pad) > 8:
            return None
        moved = batch_last_order(pad_pairs(4, self.pad))
        return PadOp(torch_pad_order(list(moved)), self.value)

    def forward(self, *inputs: np.ndarray) -> tuple[np.ndarray, Any]:
        return pad(inputs[0], self.pad, self.value), None

    def backward(self, grad_out: np.ndarray, cache: Any, needs: Sequence[bool]) -> Grads:
        return (pad_backward(grad_out, self.pad),)


class _LayoutOp:
    """A change of layout: ``convert`` forward, its inverse ``revert`` on the way back (plain
    functions, looked up on the class).

    Shape:
        see the subclasses.
    """

    convert: ClassVar[Callable[[np.ndarray], np.ndarray]]
    revert: ClassVar[Callable[[np.ndarray], np.ndarray]]

    def forward(self, *inputs: np.ndarray) -> tuple[np.ndarray, Any]:
        return type(self).convert(inputs[0]), None

    def backward(self, grad_out: np.ndarray, cache: Any, needs: Sequence[bool]) -> Grads:
        return (type(self).revert(grad_out),)


class ToBatchLastOp(_LayoutOp):
    """The graph's entry into the batch-last layout (see :mod:`cnnlab.scratch.layout_plan`).

    Shape:
        ``(N, C, H, W) -> (C, H, W, N)``.
    """

    convert, revert = to_batch_last, to_batch_first


class ToBatchFirstOp(_LayoutOp):
    """The way back to PyTorch's layout, before ops that need it (``Flatten``, ``Linear``).

    Shape:
        ``(C, H, W, N) -> (N, C, H, W)``.
    """

    convert, revert = to_batch_first, to_batch_last
