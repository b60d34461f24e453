"""Render: a :class:`~cnnlab.analysis.records.ModelSummary` as text (table, explanation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnlab.analysis.records import LayerInfo, ModelSummary


def _shape(shape: tuple[int, ...] | list[int] | None) -> str:
    return "x".join(str(d) for d in shape) if shape is not None else "-"


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


def _field(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "x".join(f"{v:g}" for v in value)
    return f"{value:g}"


def _row(layer: LayerInfo) -> list[str]:
    d = layer.to_dict()
    return [
        "  " * max(layer.depth - 1, 0) + f"{layer.name} ({layer.type})",
        _shape(layer.output_shape),
        f"{layer.params:,}",
        f"{layer.non_trainable_params:,}" if layer.non_trainable_params else "",
        f"{layer.macs:,}" if layer.macs else "",
        _field(d["receptive_field"]),
        _field(d["jump"]),
        _field(d["start"]),
    ]


def format_table(s: ModelSummary) -> str:
    """The summary as a text table followed by the totals."""
    header = [
        "Layer (type)",
        "Output shape",
        "Param #",
        "Non-train.",
        "MACs",
        "RF",
        "Jump",
        "Start",
    ]
    rows = [header] + [_row(layer) for layer in s.layers]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    right = {2, 3, 4, 5, 6, 7}

    def line(r: list[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "=" * len(line(header))
    out = [f"{s.model}  input {_shape(s.input_shape)} -> output {_shape(s.output_shape)}", rule,
           line(header), rule, *(line(r) for r in rows[1:]), rule]  # fmt: skip
    out += [
        f"Total params: {s.total_params:,} (trainable + non-trainable)",
        f"Trainable params: {s.trainable_params:,} (what the optimiser updates; the count "
        "`cnnlab models` lists)",
        f"Non-trainable params: {s.non_trainable_params:,}" + _non_trainable_parts(s),
    ]
    if s.aux_params:
        out.append(
            f"Auxiliary params (training only, not in the totals): {s.aux_params:,} "
            f"in {', '.join(s.aux_modules)}"
        )
    out += [
        f"MACs: {s.macs:,}   FLOPs (2 x MACs): {s.flops:,}",
        f"Param memory: {_bytes(s.param_bytes)}   "
        f"Activation memory (one sample, all layers): {_bytes(s.activation_bytes)}",
        "RF, Jump, Start: receptive field size, distance between neighbouring units' fields and "
        "centre of the first unit's field, in input pixels.",
    ]
    return "\n".join(out)


def _non_trainable_parts(s: ModelSummary) -> str:
    """What the non-trainable count is made of: BatchNorm running statistics, frozen weights."""
    parts = []
    if s.buffer_params:
        parts.append(f"BatchNorm running mean and variance: {s.buffer_params:,}")
    if s.frozen_params:
        parts.append(f"frozen parameters: {s.frozen_params:,}")
    return f" ({'; '.join(parts)})" if parts else ""


def format_explain(s: ModelSummary) -> str:
    """For every layer with windows or weights: its output-size and parameter arithmetic."""
    out = [f"{s.model}  input {_shape(s.input_shape)}"]
    for layer in s.layers:
        if not layer.size_arithmetic and not layer.param_arithmetic:
            continue
        out.append(f"{layer.name} ({layer.type}) -> {_shape(layer.output_shape)}")
        out += [f"  size:   {a}" for a in layer.size_arithmetic]
        if layer.param_arithmetic:
            out.append(f"  params: {layer.param_arithmetic}")
    return "\n".join(out)


#: Under ``cnnlab models``: why its counts differ from ``summary``'s "Total params".
MODELS_NOTE = (
    "Trainable params: the weights an optimiser updates. `cnnlab summary` also counts "
    "BatchNorm's running mean and variance (non-trainable), so its Total params is larger for "
    "models with BatchNorm."
)


def format_models(rows: list[dict[str, Any]]) -> str:
    """The ``cnnlab models`` table from :func:`cnnlab.analysis.summary.model_overview` rows."""
    header = ["Model", "Input", "Classes", "Trainable params", "MACs", "Description"]
    table = [header] + [
        [r["name"], _shape(r["default_input"]), str(r["num_classes"]), f"{r['params']:,}",
         f"{r['macs']:,}", r["description"]]
        for r in rows
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    lines = []
    for r in table:
        cells = [
            c.rjust(w) if i in (2, 3, 4) else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=False))
        ]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines)
