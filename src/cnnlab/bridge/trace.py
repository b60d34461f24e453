"""Trace a torch model with torch.fx, once per mode, auxiliary outputs included.

Tracing runs the model's Python with proxies, so train/eval branches are resolved at trace time:
the model is traced in training mode (GoogLeNet's auxiliary heads run, and their logits, which
the model stores in ``model.aux_outputs``, become extra graph outputs) and in eval mode.
Dropout and BatchNorm stay layers whose behaviour follows the scratch net's mode at run time.
"""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import nn

from cnnlab.errors import UnsupportedOpError
from cnnlab.inference import module_mode

#: Module path of the traced model inside :class:`_WithAux` (stripped from every name).
PREFIX = "model."
_MISSING = object()


class _WithAux(nn.Module):
    """``x -> (logits, *model.aux_outputs)``: makes the auxiliary logits graph outputs."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.model(x)
        return (logits, *getattr(self.model, "aux_outputs", ()))


def trace(model: nn.Module, training: bool) -> fx.Graph:
    """The fx graph of ``model`` in the given mode; the model's mode and ``aux_outputs`` are
    restored afterwards.

    Raises:
        UnsupportedOpError: the model's Python cannot be traced symbolically.
    """
    aux_before = model.__dict__.get("aux_outputs", _MISSING)
    try:
        with module_mode(model, training):
            return fx.symbolic_trace(_WithAux(model)).graph
    except Exception as exc:  # fx raises TraceError, TypeError, ... from user code
        raise UnsupportedOpError(
            f"expected a model torch.fx can trace, received {type(model).__name__} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    finally:
        if aux_before is not _MISSING:
            model.aux_outputs = aux_before  # tracing left proxies there


def strip_prefix(name: str) -> str:
    """``model.layer1.0.conv1`` -> ``layer1.0.conv1``."""
    return name[len(PREFIX) :] if name.startswith(PREFIX) else name


def layer_of(node: fx.Node) -> str:
    """The innermost module a node was called from, for error messages (``"model"`` at the
    top level)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return "the model's forward"
    path, kind = list(stack.values())[-1]
    name = strip_prefix(str(path)) or "model"
    kind_name = getattr(kind, "__name__", str(kind).rsplit(".", 1)[-1].strip("'>"))
    return f"{name} ({kind_name})"
