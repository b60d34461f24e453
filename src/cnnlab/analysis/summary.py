"""Aggregate: ``summary(model)`` -> :class:`ModelSummary`, a data object whose repr is a table.

torchinfo's shape: validate the arguments, collect one shape pass (:mod:`.trace`), aggregate
it into per-layer rows and totals (:mod:`.records`) here, render text in :mod:`.render`.
``to_dict()`` is the ``cnnlab summary --json`` document of DESIGN.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from cnnlab.analysis.params import own_params, param_arithmetic
from cnnlab.analysis.receptive_field import Field
from cnnlab.analysis.records import LayerInfo, ModelSummary
from cnnlab.analysis.source import resolve_model
from cnnlab.analysis.trace import (
    InputMismatchError,
    InputTooSmallError,
    ModuleCall,
    OpCall,
    Trace,
    trace,
)
from cnnlab.errors import ConfigError, ModelError, expected
from cnnlab.models import get_model_entry, list_models
from cnnlab.shapes import parse_input_shape


def _is_row(call: ModuleCall) -> bool:
    m = call.module
    has_own = any(True for _ in m.parameters(recurse=False)) or any(
        True for _ in m.buffers(recurse=False)
    )
    return not any(True for _ in m.children()) or has_own or call.macs > 0 or bool(call.windows)


def _in_order(t: Trace) -> list[ModuleCall | OpCall]:
    """Module calls and branch joins in the order they ran (joins after the calls before them)."""
    entries: list[ModuleCall | OpCall] = []
    ops = iter(t.ops)
    op = next(ops, None)
    for i, call in enumerate(t.calls):
        while op is not None and op.position <= i:
            entries.append(op)
            op = next(ops, None)
        entries.append(call)
    entries.extend([op] if op is not None else [])
    entries.extend(ops)
    return entries


def _op_row(op: OpCall) -> LayerInfo:
    return LayerInfo(op.name, op.op, op.depth, op.output_shape, 0, 0, 0, op.field, op.output_bytes)


def _aggregate(model: nn.Module, name: str, t: Trace, depth: int | None = None) -> ModelSummary:
    """Rows and totals. With ``depth``, modules nested deeper than ``depth`` are folded into
    their ancestor at ``depth``, which becomes a row with their parameters, MACs and window
    arithmetic (torchinfo's ``depth``); the totals are the same at every depth."""
    seen: set[int] = set()
    layers: list[LayerInfo] = []
    group: LayerInfo | None = None  # the row at the depth limit that deeper calls fold into
    trainable = non_trainable = buffers = nbytes = activations = 0
    for entry in _in_order(t):
        folded = depth is not None and entry.depth > depth
        if isinstance(entry, OpCall):
            activations += entry.output_bytes
            if not folded:
                layers.append(_op_row(entry))
                group = None
            continue
        call = entry
        count = own_params(call.module, seen)
        trainable += count.trainable
        non_trainable += count.non_trainable
        buffers += count.buffers
        nbytes += count.nbytes
        arithmetic = [line for w in call.windows for line in w.explain()]
        activations += call.output_bytes if _is_row(call) else 0
        if folded:
            if group is not None:
                group.trainable_params += count.trainable
                group.non_trainable_params += count.non_trainable
                group.macs += call.macs
                group.size_arithmetic += [f"{call.name}: {line}" for line in arithmetic]
            continue
        at_limit = depth is not None and call.depth == depth and bool(call.name)
        if not (_is_row(call) or at_limit):
            group = None
            continue
        layer = LayerInfo(
            name=call.name or name,
            type=type(call.module).__name__,
            depth=call.depth,
            output_shape=call.output_shape,
            trainable_params=count.trainable,
            non_trainable_params=count.non_trainable,
            macs=call.macs,
            field=call.field,
            activation_bytes=call.output_bytes,
            size_arithmetic=arithmetic,
            param_arithmetic=param_arithmetic(call.module) if call.first else None,
        )
        layers.append(layer)
        group = layer if at_limit else None
        if at_limit and any(True for _ in call.module.children()):
            layer.param_arithmetic = None  # a folded container: its children's sums
    executed = t.executed
    aux = 0
    aux_modules: list[str] = []
    for module_name, module in model.named_modules():
        if module_name in executed:
            continue
        aux += own_params(module, seen).total
        parent = module_name.rpartition(".")[0]
        if parent in executed:
            aux_modules.append(module_name)
    return ModelSummary(
        model=name,
        input_shape=t.input_shape,
        output_shape=t.output_shape,
        layers=layers,
        trainable_params=trainable,
        non_trainable_params=non_trainable,
        macs=sum(c.macs for c in t.calls),
        param_bytes=nbytes,
        aux_params=aux,
        aux_modules=aux_modules,
        buffer_params=buffers,
        depth=depth,
        activation_total=activations,
    )


def _smallest_square_input(model: nn.Module, channels: int, limit: int = 4096) -> int | None:
    """Smallest ``s`` for which no window runs out of input at ``channels x s x s`` (output
    sizes only grow with the input, so a bisection finds it); None if even ``limit`` is too
    small. Other mismatches (a linear layer sized for one input) do not count here."""

    def fits(s: int) -> bool:
        try:
            trace(model, (channels, s, s))
        except InputTooSmallError:
            return False
        except ModelError:
            return True
        return True

    if not fits(limit):
        return None
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(mid) else (mid + 1, hi)
    return lo


def _trace_checked(
    model: nn.Module, name: str, shape: tuple[int, int, int], default: tuple[int, ...] | None
) -> Trace:
    try:
        return trace(model, shape)
    except InputMismatchError as e:
        built = f"{name} was built for input {'x'.join(map(str, default))}" if default else ""
        raise ModelError(
            f"{e}; {built + ', ' if built else ''}received input_shape={shape}"
        ) from None
    except InputTooSmallError as e:
        smallest = _smallest_square_input(model, shape[0])
        need = (
            f"an input of at least {shape[0]}x{smallest}x{smallest}"
            if smallest
            else "a larger input"
        )
        raise ModelError(
            f"input too small for {name}: {e}; expected {need}, received input_shape={shape}"
        ) from None


def _validated_shape(
    input_shape: Sequence[int] | str | None, default: tuple[int, ...] | None
) -> tuple[int, int, int]:
    if input_shape is not None:
        return parse_input_shape(input_shape)
    if default is None:
        raise ConfigError(
            "expected an input shape for a model without a default input (a model of your own: "
            "pass --input C,H,W, e.g. --input 1,28,28, or input_shape=...), received none"
        )
    return parse_input_shape(tuple(default))


def summary(
    model: nn.Module | str,
    input_shape: Sequence[int] | str | None = None,
    num_classes: int | None = None,
    max_depth: int | None = None,
    **model_kwargs: Any,
) -> ModelSummary:
    """Summarise a model: per-layer output shapes, parameters, MACs and receptive fields.

    Rows are the layers with weights or windows, and the torch calls that join branches
    (Inception's ``torch.cat``, the residual addition), in the order they run.

    Args:
        model: a registered name, ``path/to/file.py:callable`` or an ``nn.Module``. A name is
            built with uninitialised weights, so the summary of VGG-16 takes milliseconds.
        input_shape: ``(C, H, W)`` or ``"C,H,W"``; defaults to the model's default input. For a
            registered name, ``C`` also sets the model's ``in_channels``.
        num_classes: classes of the classifier (names and file models that accept it).
        max_depth: show modules down to this nesting depth (1: the model's children); deeper
            ones are folded into their ancestor's row (torchinfo's ``depth``; ``cnnlab summary
            --depth``). None: every layer. (``depth`` itself would be a model option.)
        **model_kwargs: options of a registered model.

    Raises:
        ConfigError: malformed ``input_shape`` or ``num_classes``.
        ModelError: unknown model, bad file spec, or an input the model cannot take (the
            message names the layer and its size arithmetic).
    """
    if num_classes is not None and (isinstance(num_classes, bool) or int(num_classes) < 1):
        raise ConfigError(expected("a positive number of classes", num_classes=num_classes))
    if max_depth is not None and (isinstance(max_depth, bool) or int(max_depth) < 1):
        raise ConfigError(expected("a depth of at least 1", depth=max_depth))
    shape = parse_input_shape(input_shape) if input_shape is not None else None
    in_channels = shape[0] if shape is not None and not isinstance(model, nn.Module) else None
    module, name, default = resolve_model(model, num_classes, in_channels, **model_kwargs)
    shape = _validated_shape(shape, default)
    return _aggregate(module, name, _trace_checked(module, name, shape, default), max_depth)


def check_input(
    model: nn.Module | str, input_shape: Sequence[int] | str, **model_kwargs: Any
) -> tuple[int, ...]:
    """Pre-flight check that ``model`` takes inputs of ``input_shape``; returns the output shape.

    Runs one shape pass on an empty batch (nothing is computed and the weights are untouched),
    so call it before training instead of slowing ``forward``.

    Raises:
        ModelError: the input is too small for some layer (message: the layer, its arithmetic
            and the smallest input that fits) or otherwise does not fit.
    """
    shape = parse_input_shape(input_shape)
    in_channels = None if isinstance(model, nn.Module) else shape[0]
    module, name, default = resolve_model(model, None, in_channels, **model_kwargs)
    out = _trace_checked(module, name, shape, default).output_shape
    return out if out is not None else ()


def min_input_size(
    model: nn.Module | str, in_channels: int | None = None, **model_kwargs: Any
) -> int | None:
    """The smallest square input size ``s`` (``C x s x s``) no conv or pool layer is too small
    for, e.g. 63 for ``alexnet``, 32 for ``vgg16``; None if none up to 4096 is."""
    module, _, default = resolve_model(model, None, in_channels, **model_kwargs)
    channels = in_channels or (default[0] if default else None)
    if channels is None:
        raise ConfigError(
            expected("in_channels for a model without a default input", in_channels=None)
        )
    return _smallest_square_input(module, channels)


def receptive_fields(model: nn.Module, input_shape: Sequence[int] | str) -> dict[str, Field | None]:
    """Receptive field of the output of every module call (containers too), by module name.

    A module called several times keeps the field of its last call.
    """
    shape = parse_input_shape(input_shape)
    return {c.name: c.field for c in trace(model, shape).calls}


def model_overview(pattern: str = "*") -> list[dict[str, Any]]:
    """One row per registered model for ``cnnlab models``: name, default input, classes,
    parameters, MACs at the default input, description.

    ``params`` (and ``trainable_params``) counts the trainable parameters of the layers that
    run in inference; ``total_params`` adds the non-trainable ones, BatchNorm's running mean
    and variance: that total is ``summary``'s "Total params"."""
    rows = []
    for name in list_models(pattern):
        entry = get_model_entry(name)
        s = summary(name)
        rows.append(
            {
                "name": name,
                "default_input": list(entry.default_input),
                "num_classes": entry.default_num_classes,
                "params": s.trainable_params,
                "trainable_params": s.trainable_params,
                "total_params": s.total_params,
                "macs": s.macs,
                "description": entry.description,
            }
        )
    return rows
