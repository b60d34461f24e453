"""Collect: one shape pass through a model, recording what every module call does.

The pass runs on a batch of zero images: every layer computes the right output shape and no
arithmetic at all, so even VGG-16 at 224x224 is traced in milliseconds, with no ``meta`` device
kernels (whose first use imports sympy and torch's decompositions, most of a second). Models
whose forward cannot take an empty batch (``x.view(x.size(0), -1)``) are traced again with one
real image. Module hooks keep a stack of the module calls in progress; a
``TorchFunctionMode`` sees every torch function the forward calls and charges it to the module
on top of the stack: its MACs (:mod:`cnnlab.analysis.flops`), its window geometry for
``--explain`` and the input-size check (:mod:`cnnlab.shapes`), and the receptive field
of its outputs (:mod:`cnnlab.analysis.receptive_field`). The torch calls that join branches
between layers, ``torch.cat`` (Inception's concatenation) and the addition of two feature maps
(a residual connection, ``out += identity``), are recorded as :class:`OpCall` rows of their own.
Hooks are always removed and the train/eval flags of every submodule restored, whatever happens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.analysis.flops import macs_of
from cnnlab.analysis.receptive_field import Field, FieldTracker
from cnnlab.analysis.torch_calls import FunctionWatcher
from cnnlab.analysis.windows import window_of
from cnnlab.errors import ModelError
from cnnlab.inference import eval_mode
from cnnlab.shapes import Window


@dataclass
class WindowCall:
    """One convolution or pooling call: its geometry and input / output spatial sizes."""

    window: Window
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]

    def explain(self) -> list[str]:
        return self.window.explain(self.in_hw)


@dataclass
class ModuleCall:
    """One execution of one module during the pass.

    Attributes:
        name: qualified module name (``""`` for the model itself).
        module: the module.
        depth: nesting depth (0 for the model).
        first: whether this is the module's first call (its parameters are counted there).
        macs: MACs of the torch calls made directly by this module (not by its children).
        windows: conv / pool calls made directly by this module.
        output_shape: shape of the (first) output tensor, batch dimension dropped.
        output_bytes: memory of that output for one sample.
        field: receptive field of that output, None when unknown.
    """

    name: str
    module: nn.Module
    depth: int
    first: bool
    macs: int = 0
    windows: list[WindowCall] = field(default_factory=list)
    output_shape: tuple[int, ...] | None = None
    output_bytes: int = 0
    field: Field | None = None


#: Torch functions shown as rows of their own: joining branches (``torch.cat``) and adding two
#: feature maps of the same shape (residual connections: ``+``, ``+=``, ``torch.add``).
JOINS: dict[Callable[..., Any], str] = {
    torch.cat: "cat",
    torch.concat: "cat",
    torch.concatenate: "cat",
    torch.add: "add",
    torch.Tensor.add: "add",
    torch.Tensor.add_: "add",
    torch.Tensor.__add__: "add",
    torch.Tensor.__radd__: "add",
    torch.Tensor.__iadd__: "add",
}


@dataclass
class OpCall:
    """A branch-joining torch call made by a module's forward (see :data:`JOINS`).

    Attributes:
        name: the calling module's name and the op, e.g. ``inception3a.cat``, ``layer1.0.add``
            (numbered ``add_1``, ... when a module makes several).
        op: ``"cat"`` or ``"add"``.
        depth: one below the calling module.
        position: the number of module calls started before it (orders it among them).
        output_shape: shape of its output, batch dimension dropped.
        output_bytes: memory of that output for one sample.
        field: receptive field of that output, None when unknown.
    """

    name: str
    op: str
    depth: int
    position: int
    output_shape: tuple[int, ...]
    output_bytes: int
    field: Field | None = None


@dataclass
class Trace:
    """Everything the pass recorded, calls in the order they started."""

    input_shape: tuple[int, ...]
    calls: list[ModuleCall]
    output_shape: tuple[int, ...] | None
    ops: list[OpCall] = field(default_factory=list)

    @property
    def executed(self) -> set[str]:
        return {c.name for c in self.calls}


class InputTooSmallError(ModelError):
    """A window does not fit its input; carries the call for a precise message."""

    def __init__(self, call: ModuleCall, window: WindowCall) -> None:
        self.call, self.window = call, window
        super().__init__(f"{_where(call)}: {'; '.join(window.explain())}")


class InputMismatchError(ModelError):
    """A layer receives a different number of features or channels than it was built for."""


def _where(call: ModuleCall | None) -> str:
    if call is None:
        return "the model"
    return f"{call.name or 'the model'} ({type(call.module).__name__})"


class _Tracer(FunctionWatcher):
    def __init__(
        self,
        stack: list[ModuleCall],
        fields: FieldTracker,
        calls: list[ModuleCall] | None = None,
        ops: list[OpCall] | None = None,
    ) -> None:
        super().__init__()
        self.stack, self.fields = stack, fields
        self.calls, self.ops = calls if calls is not None else [], ops

    def handle(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        owner = self.stack[-1] if self.stack else None
        window = window_of(func, args, kwargs)
        if window is not None and owner is not None:
            x = args[0] if args else kwargs["input"]
            in_hw = (int(x.shape[-2]), int(x.shape[-1]))
            call = WindowCall(window, in_hw, window.output_hw(in_hw))
            if min(call.out_hw) < 1:
                raise InputTooSmallError(owner, call)
            owner.windows.append(call)
        if func is F.linear:
            _check_linear(owner, args, kwargs)
        elif func is torch.conv2d:
            _check_conv(owner, args, kwargs)
        out = func(*args, **kwargs)
        if owner is not None:
            owner.macs += macs_of(func, args, kwargs, out)
        self.fields.update(func, args, kwargs, out, window)
        if self.ops is not None and owner is not None and _joins(func, args, kwargs, out):
            self._record_join(owner, JOINS[func], out)
        return out

    def _record_join(self, owner: ModuleCall, op: str, out: torch.Tensor) -> None:
        prefix = f"{owner.name}." if owner.name else ""
        taken = sum(o.name.startswith(f"{prefix}{op}") for o in self.ops or [])
        name = f"{prefix}{op}" + (f"_{taken}" if taken else "")
        shape = tuple(out.shape[1:])
        self.ops.append(  # type: ignore[union-attr]
            OpCall(
                name,
                op,
                owner.depth + 1,
                len(self.calls),
                shape,
                math.prod(shape) * out.element_size(),
                self.fields.get(out),
            )
        )


def _joins(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
) -> bool:
    """Whether a call joins branches: ``torch.cat`` of feature maps, or the sum of two tensors
    of the same shape (not a bias or a scalar added)."""
    op = JOINS.get(func)
    if op is None or not isinstance(out, torch.Tensor) or out.dim() < 2:
        return False
    if op == "cat":
        return True
    other = args[1] if len(args) > 1 else kwargs.get("other")
    return (
        isinstance(args[0], torch.Tensor)
        and isinstance(other, torch.Tensor)
        and args[0].shape == other.shape
    )


def _check_linear(owner: ModuleCall | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    x = args[0] if args else kwargs["input"]
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    if x.shape[-1] != weight.shape[-1]:
        raise InputMismatchError(
            f"{_where(owner)} expected {weight.shape[-1]} input features, received {x.shape[-1]}"
        )


def _check_conv(owner: ModuleCall | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    x = args[0] if args else kwargs["input"]
    weight = args[1] if len(args) > 1 else kwargs["weight"]
    groups = args[6] if len(args) > 6 else kwargs.get("groups", 1)
    if x.dim() == 4 and x.shape[1] != weight.shape[1] * groups:
        raise InputMismatchError(
            f"{_where(owner)} expected {weight.shape[1] * groups} input channels, "
            f"received {x.shape[1]}"
        )


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, list | tuple):
        for item in obj:
            t = _first_tensor(item)
            if t is not None:
                return t
    if isinstance(obj, dict):
        return _first_tensor(list(obj.values()))
    return None


def _pass(model: nn.Module, input_shape: tuple[int, ...], batch: int) -> Trace:
    stack: list[ModuleCall] = []
    calls: list[ModuleCall] = []
    ops: list[OpCall] = []
    fields = FieldTracker()
    counted: set[int] = set()
    names = {id(m): name for name, m in model.named_modules(remove_duplicate=False)}

    def pre_hook(module: nn.Module, _inputs: Any) -> None:
        name = names.get(id(module), "?")
        call = ModuleCall(
            name, module, name.count(".") + 1 if name else 0, id(module) not in counted
        )
        counted.add(id(module))
        stack.append(call)
        calls.append(call)

    def post_hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        call = stack.pop()
        t = _first_tensor(output)
        if t is not None:
            call.output_shape = tuple(t.shape[1:])
            call.output_bytes = math.prod(call.output_shape) * t.element_size()
            call.field = fields.get(t)

    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    like = {"device": param.device, "dtype": param.dtype} if param is not None else {}
    x = torch.zeros((batch, *input_shape), **like)
    fields.set(x, Field.image())
    handles = []
    try:
        for m in model.modules():
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(post_hook))
        with eval_mode(model), torch.no_grad(), _Tracer(stack, fields, calls, ops):
            try:
                out = model(x)
            except ModelError:
                raise
            except Exception as e:
                where = _where(stack[-1] if stack else None)
                message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise _ForwardError(f"{where} cannot take its input: {message}") from e
    finally:
        for h in handles:
            h.remove()
    t = _first_tensor(out)
    output = tuple(t.shape[1:]) if t is not None else None
    return Trace(tuple(input_shape), calls, output, ops)


class _ForwardError(ModelError):
    """The forward raised something other than a cnnlab error."""


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> Trace:
    """Run one eval-mode shape pass of ``model`` on an empty batch of ``input_shape`` images
    (falling back to one zero image if the forward cannot take an empty batch).

    All counts (MACs, output bytes) are per sample. The model's weights are not touched.

    Raises:
        ModelError: a layer cannot take what reaches it (input too small, feature-size
            mismatch, or any other error raised by the forward), naming the layer.
    """
    try:
        return _pass(model, input_shape, batch=0)
    except _ForwardError:
        return _pass(model, input_shape, batch=1)
