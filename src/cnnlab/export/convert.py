"""torch -> ONNX: the torch.export-based exporter, with the TorchScript exporter as fallback.

The current exporter is ``torch.onnx.export(..., dynamo=True)``: ``torch.export`` captures the
graph (non-strict first, then strict, as torch.onnx itself tries), torch.onnx translates it
with onnxscript's torchlib, and onnxscript's optimizer folds constants and BatchNorm into the
preceding convolutions. With ``fold_bn=False`` the graph keeps its BatchNormalization nodes
(constants are still folded). The batch dimension is dynamic and named ``batch``.

When torch.export cannot capture the model, or its graph has an op without an ONNX
translation, the legacy TorchScript exporter is tried; the result says so, with the reason and
the tracer's warnings (a trace bakes in Python control flow; the verification that follows
every export checks the numbers). When both fail, one line names the layer.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import torch

from cnnlab.errors import ModelError
from cnnlab.export.failure import (
    layer_from_graph,
    layer_from_traceback,
    one_line,
    reason,
    user_code_line,
)
from cnnlab.export.metadata import INPUT_NAME, OUTPUT_NAME
from cnnlab.export.quiet import silenced

DYNAMO = "torch.export"
TORCHSCRIPT = "torchscript"
BATCH = "batch"


@dataclass
class Conversion:
    """An exported graph (not yet verified).

    Attributes:
        proto: the ``onnx.ModelProto``.
        exporter: :data:`DYNAMO` or :data:`TORCHSCRIPT` (the fallback).
        fallback_reason: why torch.export was not used (None when it was).
        warnings: the exporter's warnings (e.g. the TorchScript tracer's), one line each.
    """

    proto: Any
    exporter: str
    fallback_reason: str | None = None
    warnings: list[str] = field(default_factory=list)


class _ExportError(Exception):
    """torch.export or torch.onnx failed; ``layer`` and ``summary`` describe where and why."""

    def __init__(self, stage: str, layer: str | None, summary: str) -> None:
        super().__init__(summary)
        self.stage, self.layer, self.summary = stage, layer, summary

    def describe(self) -> str:
        where = f"layer {self.layer}" if self.layer else "the model"
        return f"{self.stage} failed at {where}: {self.summary}"


def to_onnx(
    module: torch.nn.Module, sample: torch.Tensor, *, fold_bn: bool, opset: int | None, name: str
) -> Conversion:
    """Export ``module`` (eval mode) for inputs like ``sample`` with a dynamic batch.

    Args:
        module: takes ``(N, C, H, W)`` pixels, returns ``(N, K)`` logits.
        sample: an example batch of at least 2 images (a batch of 1 would fix the size).
        fold_bn: let the optimizer fold BatchNorm into the convolutions.
        opset: the default-domain ONNX opset (None: the exporter's default).
        name: the model's name, for messages.

    Raises:
        ModelError: neither exporter can export the model (one line naming the layer).
    """
    try:
        return Conversion(_with_torch_export(module, sample, fold_bn, opset), DYNAMO)
    except _ExportError as failure:
        dynamo_failure = failure
    try:
        proto, warnings = _with_torchscript(module, sample, fold_bn, opset)
    except Exception as exc:  # any exporter failure becomes the one-line error below
        raise ModelError(
            f"expected a model the ONNX exporters can export, received {name}: "
            f"{dynamo_failure.describe()}; the TorchScript exporter failed too ({reason(exc)})"
        ) from None
    return Conversion(proto, TORCHSCRIPT, dynamo_failure.describe(), warnings)


def _with_torch_export(
    module: torch.nn.Module, sample: torch.Tensor, fold_bn: bool, opset: int | None
) -> Any:
    """The torch.export-based exporter (``torch.onnx.export(..., dynamo=True)``)."""
    program = _capture(module, sample)
    with silenced():
        try:
            onnx_program = torch.onnx.export(
                program,
                dynamo=True,
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                optimize=fold_bn,
                verbose=False,
            )
        except Exception as exc:  # a translation failure of any kind is reported by layer
            layer = layer_from_graph(exc, program)
            raise _ExportError("ONNX translation", layer, reason(exc)) from None
    model = onnx_program.model
    if not fold_bn:
        _fold_constants_only(model)
    _name_batch_dimension(model)
    return onnx_program.model_proto


def _capture(module: torch.nn.Module, sample: torch.Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` of ``module`` with a dynamic batch: non-strict, then strict."""
    batch = torch.export.Dim(BATCH, min=1)
    first: Exception | None = None
    for strict in (False, True):
        with silenced():
            try:
                return torch.export.export(
                    module, (sample,), dynamic_shapes={INPUT_NAME: {0: batch}}, strict=strict
                )
            except Exception as exc:  # try the next strategy; report the first failure
                first = first or exc
    assert first is not None
    summary = reason(first)
    where = user_code_line(first)
    if where:
        summary += f" (at {where})"
    raise _ExportError("torch.export", layer_from_traceback(first, module), summary)


def _fold_constants_only(model: Any) -> None:
    """The optimizer's constant folding and clean-up, without its fusion rewrites, so that
    BatchNormalization nodes stay in the graph."""
    import onnxscript.ir.passes.common as passes
    import onnxscript.optimizer

    onnxscript.optimizer.fold_constants(model)
    onnxscript.optimizer.remove_unused_nodes(model)
    passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
    passes.CommonSubexpressionEliminationPass()(model)
    passes.RemoveUnusedNodesPass()(model)


def _name_batch_dimension(model: Any) -> None:
    """Call the symbolic batch dimension ``batch`` everywhere (torch.export names it s0...)."""
    from onnxscript import ir

    first = model.graph.inputs[0].shape[0]
    if not isinstance(first, ir.SymbolicDim) or first.value is None:
        return
    old = first.value
    values = [*model.graph.inputs, *(v for node in model.graph for v in node.outputs)]
    for value in values:
        if value.shape is not None and any(
            isinstance(d, ir.SymbolicDim) and d.value == old for d in value.shape
        ):
            value.shape = ir.Shape(
                [
                    BATCH if isinstance(d, ir.SymbolicDim) and d.value == old else d
                    for d in value.shape
                ]
            )


def _with_torchscript(
    module: torch.nn.Module, sample: torch.Tensor, fold_bn: bool, opset: int | None
) -> tuple[Any, list[str]]:
    """The legacy TorchScript exporter (``dynamo=False``); returns (proto, warnings)."""
    import onnx
    import onnxscript.optimizer

    buffer = io.BytesIO()
    options: dict[str, Any] = {} if opset is None else {"opset_version": opset}
    with silenced() as chatter:
        torch.onnx.export(
            module,
            (sample,),
            buffer,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: BATCH}, OUTPUT_NAME: {0: BATCH}},
            **options,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    if fold_bn:
        proto = onnxscript.optimizer.optimize(proto)
    # the legacy exporter's own deprecation notice is not about this model
    warnings = [w for w in chatter.warnings if not w.startswith("DeprecationWarning")]
    return proto, [one_line(w) for w in warnings]
