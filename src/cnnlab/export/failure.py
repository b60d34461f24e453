"""Condensing an exporter's failure into one line that names the layer.

torch's exporters fail with pages of text (graphs, stack traces, links). The user needs three
things: which layer, what went wrong, and the exporter's own one-line reason. The layer comes
from where the failure happened: for a capture failure (``torch.export``), the innermost
``forward`` of one of the model's modules in the traceback; for a translation failure
(``torch.onnx``), the ``nn_module_stack`` of the graph node that has no ONNX translation.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TARGET = re.compile(r"target=(?:torch\.ops\.)?([\w.]+)")
_TORCH_DIR = str(Path(torch.__file__).parent)
# Lines of torch's own advice (steps, links) that say nothing about this model
_BOILERPLATE = ("Failed to ", "This is step", "## ", "- ", "(Refer to", "For more information")


def one_line(text: str, limit: int = 240) -> str:
    """``text`` on one line (ANSI colours removed, whitespace collapsed), cut at ``limit``."""
    flat = " ".join(_ANSI.sub("", text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts, outermost first (each once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def reason(exc: BaseException) -> str:
    """The innermost exception of the chain as ``Type: first meaningful line``."""
    innermost = list(exception_chain(exc))[-1]
    lines = [_ANSI.sub("", line).strip() for line in str(innermost).splitlines()]
    meaningful = [line for line in lines if line and not line.startswith(_BOILERPLATE)]
    return one_line(f"{type(innermost).__name__}: {meaningful[0] if meaningful else ''}")


def layer_from_traceback(exc: BaseException, root: nn.Module) -> str | None:
    """``name (Type)`` of the innermost module of ``root`` whose code was running when the
    exception was raised (None if no module frame is in the traceback)."""
    names = {id(module): name for name, module in root.named_modules()}
    found = None
    for error in exception_chain(exc):
        for frame, _ in traceback.walk_tb(error.__traceback__):
            module = frame.f_locals.get("self")
            if isinstance(module, nn.Module) and names.get(id(module)):
                found = f"{_layer_name(names[id(module)])} ({type(module).__name__})"
    return found


def user_code_line(exc: BaseException) -> str | None:
    """``file.py:LINE`` of the innermost frame outside torch (the model's code), if any."""
    found = None
    for error in exception_chain(exc):
        for frame, lineno in traceback.walk_tb(error.__traceback__):
            filename = frame.f_code.co_filename
            if not filename.startswith(_TORCH_DIR) and "/cnnlab/export/" not in filename:
                found = f"{Path(filename).name}:{lineno}"
    return found


def layer_from_graph(exc: BaseException, program: torch.export.ExportedProgram) -> str | None:
    """``name (Type)`` of the node an ONNX translation error names, from its module stack."""
    targets = [m.group(1) for e in exception_chain(exc) for m in _TARGET.finditer(str(e))]
    for target in targets:
        for node in program.graph.nodes:
            if node.op == "call_function" and str(node.target) == target:
                stack = node.meta.get("nn_module_stack") or {}
                if stack:
                    qualified, kind = list(stack.values())[-1]
                    kind_name = getattr(kind, "__name__", str(kind).rsplit(".", 1)[-1])
                    return f"{_layer_name(qualified)} ({kind_name.strip(chr(39))})"
    return None


def _layer_name(qualified: str) -> str:
    """The layer name as ``cnnlab summary`` shows it: no ``L['self']`` / wrapper prefix."""
    name = re.sub(r"^L\['self'\]\.?", "", qualified)
    name = re.sub(r"^(_export_root\.)?", "", name)
    return re.sub(r"^model\.?", "", name) or "(the model)"
