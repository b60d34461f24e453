"""How the layers are wired: where each summary row's input comes from, and where tensors from
several layers meet (a residual addition, an Inception concatenation).

One eval-mode pass follows every tensor from the layer (or merge) that made it: module hooks
mark layer outputs, and a ``TorchFunctionMode`` sees the functions a container's ``forward``
calls between its layers. A function of tensors from two or more sources is a *merge*; one of
a single source (``torch.flatten`` in a ``forward``) passes it on, noted in ``via``. Functions
called inside a leaf layer belong to that layer and are not looked at.

For the page, each merge carries its *lanes*: for each of its inputs, the rows inside the
merging module that lead to it (an Inception module's four branches; a residual block's main
path and its shortcut, empty for an identity shortcut).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from cnnlab.analysis.torch_calls import FunctionWatcher, argument_tensors, tensors_in
from cnnlab.documents import field_values
from cnnlab.explore.layers import LayerRow, row_lookup

#: Display names of the functions that combine tensors, keyed by function object.
MERGE_OPS: dict[Callable[..., Any], str] = {
    torch.cat: "concatenate",
    torch.concat: "concatenate",
    torch.stack: "stack",
    torch.add: "add",
    torch.Tensor.add: "add",
    torch.Tensor.add_: "add",
    torch.Tensor.__add__: "add",
    torch.Tensor.__iadd__: "add",
    torch.Tensor.__radd__: "add",
    torch.mul: "multiply",
    torch.Tensor.mul: "multiply",
    torch.Tensor.mul_: "multiply",
    torch.Tensor.__mul__: "multiply",
    torch.Tensor.__imul__: "multiply",
}


@dataclass(frozen=True)
class Source:
    """Where a tensor comes from.

    Attributes:
        kind: ``"input"`` (the image), ``"layer"`` (a summary row) or ``"merge"``.
        index: the row or merge index (-1 for the input).
        via: functions applied on the way that are not layers (e.g. ``("flatten",)``).
    """

    kind: str
    index: int = -1
    via: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "index": self.index, "via": list(self.via)}


INPUT = Source("input")


@dataclass
class Merge:
    """Tensors of several sources combined by a function in a container's ``forward``.

    Attributes:
        index: position among the merges.
        op: ``"add"``, ``"concatenate"``, ... (or the function's name).
        container: qualified name of the module whose ``forward`` did it (``""``: the model).
        container_type: that module's class name.
        inputs: the sources combined, in argument order.
        output_shape: shape of the result without the batch dimension.
        position: rows that started before it (it sits between rows ``position - 1`` and
            ``position`` in the summary's order).
        lanes: for each input, the rows inside ``container`` on its path, in order.
    """

    index: int
    op: str
    container: str
    container_type: str
    inputs: list[Source]
    output_shape: tuple[int, ...]
    position: int
    lanes: list[list[int]] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``residual addition``, ``concatenation of 4 branches``, ..."""
        n = len(self.inputs)
        if self.op == "add":
            return "residual addition" if n == 2 else f"sum of {n} paths"
        if self.op == "concatenate":
            return f"concatenation of {n} branches"
        return f"{self.op} of {n} paths"

    def to_dict(self) -> dict[str, Any]:
        return {
            **field_values(self, "index", "op", "label", "container", "container_type"),
            "inputs": [s.to_dict() for s in self.inputs],
            "output_shape": list(self.output_shape),
            **field_values(self, "position", "lanes"),
        }


@dataclass
class Structure:
    """The wiring of a model's summary rows.

    Attributes:
        inputs: for each row index, the sources of its tensor arguments.
        merges: every merge, in the order they ran.
    """

    inputs: dict[int, list[Source]]
    merges: list[Merge]

    def consumers(self, index: int) -> list[int]:
        """Rows that read row ``index``'s output directly (no function in between)."""
        direct = Source("layer", index)
        return [row for row, sources in self.inputs.items() if sources == [direct]]


class _Follow(FunctionWatcher):
    def __init__(self, walk: _Walk) -> None:
        super().__init__()
        self.walk = walk

    def handle(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        out = func(*args, **kwargs)
        if not self.walk.inside_leaf():
            self.walk.function(func, args, kwargs, out)
        return out


class _Walk:
    """The state of one pass: the module stack and the source of every tensor seen."""

    def __init__(self, model: nn.Module, rows: Sequence[LayerRow]) -> None:
        self.names = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}
        self.lookup = row_lookup(rows)
        self.calls: dict[int, int] = {}
        self.stack: list[tuple[nn.Module, LayerRow | None]] = []
        self.sources: dict[int, Source] = {}
        self.keep: list[torch.Tensor] = []  # so no id is reused during the pass
        self.inputs: dict[int, list[Source]] = {}
        self.merges: list[Merge] = []
        self.started = 0

    def mark(self, t: torch.Tensor, source: Source) -> None:
        self.sources[id(t)] = source
        self.keep.append(t)

    def inside_leaf(self) -> bool:
        if not self.stack:
            return False
        module, row = self.stack[-1]
        return row is not None and not any(True for _ in module.children())

    def pre(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        call = self.calls.get(id(module), 0)
        self.calls[id(module)] = call + 1
        row = self.lookup.get(id(module), {}).get(call)
        self.stack.append((module, row))
        if row is not None:
            self.started = row.index + 1
            self.inputs[row.index] = [self.sources.get(id(t), INPUT) for t in tensors_in(args)]

    def post(self, module: nn.Module, _args: tuple[Any, ...], output: Any) -> None:
        _, row = self.stack.pop()
        if row is not None:
            for t in tensors_in(output):
                self.mark(t, Source("layer", row.index))

    def function(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
    ) -> None:
        outs = tensors_in(out)
        ins = [t for t in argument_tensors(args, kwargs) if id(t) in self.sources]
        if not outs or not ins:
            return
        found = [self.sources[id(t)] for t in ins]
        distinct = list(dict.fromkeys(found))
        if len(distinct) == 1:
            name = getattr(func, "__name__", str(func)).strip("_")
            source = distinct[0]
            source = Source(source.kind, source.index, (*source.via, name))
        else:
            container = self.stack[-1][0] if self.stack else None
            merge = Merge(
                index=len(self.merges),
                op=MERGE_OPS.get(func, getattr(func, "__name__", str(func)).strip("_")),
                container=self.names.get(id(container), "") if container is not None else "",
                container_type=type(container).__name__ if container is not None else "",
                inputs=found,
                output_shape=tuple(outs[0].shape[1:]),
                position=self.started,
            )
            self.merges.append(merge)
            source = Source("merge", merge.index)
        for t in outs:
            self.mark(t, source)


def _lanes(merge: Merge, rows: Sequence[LayerRow], inputs: dict[int, list[Source]]) -> None:
    """Fill ``merge.lanes``: walk back from each input through rows inside the container."""
    prefix = f"{merge.container}." if merge.container else ""
    inside = {row.index for row in rows if row.name.startswith(prefix) and row.info.depth > 0}
    for source in merge.inputs:
        lane: set[int] = set()
        todo = [source]
        while todo:
            s = todo.pop()
            if s.kind == "layer" and s.index in inside and s.index not in lane:
                lane.add(s.index)
                todo.extend(inputs.get(s.index, []))
        merge.lanes.append(sorted(lane))


def trace_structure(
    model: nn.Module, input_shape: Sequence[int], rows: Sequence[LayerRow]
) -> Structure:
    """Follow one eval-mode pass (an empty batch, or one zero image if the forward cannot take
    an empty one) and return where every row's input comes from and every merge.

    The model's weights are not touched; its train/eval flags are restored and the hooks
    removed, whatever happens.
    """
    try:
        return _trace(model, input_shape, rows, batch=0)
    except Exception:  # a forward that cannot take an empty batch
        return _trace(model, input_shape, rows, batch=1)


def _trace(
    model: nn.Module, input_shape: Sequence[int], rows: Sequence[LayerRow], batch: int
) -> Structure:
    walk = _Walk(model, rows)
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    like = {"device": param.device, "dtype": param.dtype} if param is not None else {}
    x = torch.zeros((batch, *input_shape), **like)
    walk.mark(x, INPUT)
    modes = [(m, m.training) for m in model.modules()]
    handles = []
    try:
        for m in model.modules():
            handles.append(m.register_forward_pre_hook(walk.pre))
            handles.append(m.register_forward_hook(walk.post))
        model.eval()
        with torch.no_grad(), _Follow(walk):
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes:
            m.training = training
    for merge in walk.merges:
        _lanes(merge, rows, walk.inputs)
    return Structure(walk.inputs, walk.merges)
