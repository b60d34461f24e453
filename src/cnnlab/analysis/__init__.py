"""Model analysis: output sizes, parameters, MACs, receptive fields, and the summary table.

Public API::

    summary(model_or_name, input_shape=None, num_classes=None, **kw) -> ModelSummary
    check_input(model_or_name, input_shape) -> output shape   (ModelError if it does not fit)
    min_input_size(model_or_name) -> smallest square input size the conv / pool layers accept
    receptive_fields(model, input_shape) -> {module name: Field}
    model_overview(pattern="*") -> rows for ``cnnlab models``; format_models(rows) -> str
    format_table(summary) / format_explain(summary) -> str; summary.to_dict() -> JSON document
    conv_output_size / explain_output_size / parse_input_shape   (cnnlab.shapes)
    load_model_from_file("path/to/file.py:callable")
"""

from cnnlab.analysis.flops import macs_of
from cnnlab.analysis.receptive_field import Field
from cnnlab.analysis.records import LayerInfo, ModelSummary
from cnnlab.analysis.render import format_explain, format_models, format_table
from cnnlab.analysis.source import is_file_spec, load_model_from_file, resolve_model
from cnnlab.analysis.summary import (
    check_input,
    min_input_size,
    model_overview,
    receptive_fields,
    summary,
)
from cnnlab.shapes import conv_output_size, explain_output_size, parse_input_shape

__all__ = [
    "Field",
    "LayerInfo",
    "ModelSummary",
    "check_input",
    "conv_output_size",
    "explain_output_size",
    "format_explain",
    "format_models",
    "format_table",
    "is_file_spec",
    "load_model_from_file",
    "macs_of",
    "min_input_size",
    "model_overview",
    "parse_input_shape",
    "receptive_fields",
    "resolve_model",
    "summary",
]
