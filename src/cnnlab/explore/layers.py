"""The rows of ``cnnlab summary`` as live layers: each row's module and which of its calls it is,
and what each row computes for one input.

A module called twice (a ResNet block's ReLU: once on the main path, once after the residual
addition) is two summary rows with one name; row ``k`` of a name is that module's ``k``-th call.
Layer kinds are decided by module class, never by names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.analysis import LayerInfo, ModelSummary, summary
from cnnlab.viz._layers import POOLS

#: Layers that map each value on its own (the "activation" step of a unit's explanation).
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Softplus,
)
NORMS: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d)


def layer_kind(module: nn.Module) -> str:
    """``conv``, ``pool``, ``activation``, ``norm``, ``linear``, ``dropout``, ``flatten``,
    ``block`` (a module with children) or ``other``."""
    kinds: tuple[tuple[tuple[type[nn.Module], ...], str], ...] = (
        ((nn.Conv2d,), "conv"),
        (POOLS, "pool"),
        (ELEMENTWISE, "activation"),
        (NORMS, "norm"),
        ((nn.Linear,), "linear"),
        ((nn.Dropout, nn.Dropout2d), "dropout"),
        ((nn.Flatten,), "flatten"),
    )
    for types, kind in kinds:
        if isinstance(module, types):
            return kind
    return "block" if any(True for _ in module.children()) else "other"


@dataclass(frozen=True)
class LayerRow:
    """One row of the summary, bound to its module.

    Attributes:
        index: position in the summary (0 = first row).
        info: the summary's row (name, type, output shape, parameters, MACs, field).
        module: the module whose call this row is.
        call: which call of that module (0 = first).
    """

    index: int
    info: LayerInfo
    module: nn.Module = field(repr=False)
    call: int = 0

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.info.output_shape or ())

    @property
    def spatial(self) -> bool:
        """Whether the output is a stack of 2-D maps, ``C x H x W``."""
        return len(self.output_shape) == 3

    @property
    def kind(self) -> str:
        return layer_kind(self.module)


def layer_rows(model: nn.Module, input_shape: Sequence[int]) -> tuple[ModelSummary, list[LayerRow]]:
    """The model's summary and its rows bound to modules, in the summary's order (the
    summary's rows of branch-joining calls are left out: the page draws joins from
    :mod:`cnnlab.explore.structure`).

    Raises:
        ModelError: the model cannot take inputs of ``input_shape``.
    """
    result = summary(model, tuple(input_shape))
    result.layers = [info for info in result.layers if not info.joins_branches]
    modules = dict(model.named_modules())
    calls: dict[int, int] = {}
    rows = []
    for index, info in enumerate(result.layers):
        module = model if info.depth == 0 else modules[info.name]
        call = calls.get(id(module), 0)
        calls[id(module)] = call + 1
        rows.append(LayerRow(index, info, module, call))
    return result, rows


def row_lookup(rows: Sequence[LayerRow]) -> dict[int, dict[int, LayerRow]]:
    """``{id(module): {call: row}}``: the row of each call of each module."""
    table: dict[int, dict[int, LayerRow]] = {}
    for row in rows:
        table.setdefault(id(row.module), {})[row.call] = row
    return table


@dataclass
class Captured:
    """What :func:`capture` recorded: outputs (and some inputs) by row index, detached copies.

    Shape:
        each tensor ``(N, *row.output_shape)`` (inputs: the shape the layer received).
    """

    outputs: dict[int, torch.Tensor] = field(default_factory=dict)
    inputs: dict[int, torch.Tensor] = field(default_factory=dict)


@contextlib.contextmanager
def capture(rows: Sequence[LayerRow], inputs_of: Collection[int] = ()) -> Iterator[Captured]:
    """Record the output of every row, and the input of the rows in ``inputs_of``, during the
    forward passes run inside (one pass: call counts start at 0 when the block starts).

    Outputs are copied when recorded, so a later in-place op (``ReLU(inplace=True)`` after a
    BatchNorm) cannot change them. The hooks are removed when the block ends, whatever happens.
    """
    captured = Captured()
    lookup = row_lookup(rows)
    wanted = set(inputs_of)
    handles = []

    def hooks(module: nn.Module) -> tuple[Callable[..., None], Callable[..., None]]:
        by_call = lookup[id(module)]
        started, finished = [0], [0]

        def pre(_module: nn.Module, args: tuple[Any, ...]) -> None:
            row = by_call.get(started[0])
            started[0] += 1
            if row is not None and row.index in wanted and args and _is_tensor(args[0]):
                captured.inputs[row.index] = args[0].detach().clone()

        def post(_module: nn.Module, _args: tuple[Any, ...], output: Any) -> None:
            row = by_call.get(finished[0])
            finished[0] += 1
            if row is not None and _is_tensor(output):
                captured.outputs[row.index] = output.detach().clone()

        return pre, post

    try:
        for row in rows:
            if row.call == 0:
                pre, post = hooks(row.module)
                handles.append(row.module.register_forward_pre_hook(pre))
                handles.append(row.module.register_forward_hook(post))
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _is_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor)
