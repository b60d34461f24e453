"""The summary's records: :class:`LayerInfo` (one row) and :class:`ModelSummary` (the rows and
totals), plain data whose ``to_dict()`` is the ``cnnlab summary --json`` document of DESIGN.md
and whose repr is the text table of :mod:`.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cnnlab.analysis.receptive_field import Field
from cnnlab.analysis.render import format_explain, format_table


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(float(x), 4)


def _per_axis(values: tuple[float, float] | None) -> int | float | list[int | float] | None:
    """One number when H and W agree, ``[h, w]`` otherwise."""
    if values is None:
        return None
    h, w = _number(values[0]), _number(values[1])
    return h if h == w else [h, w]


@dataclass
class LayerInfo:
    """One row of the summary: one call of a layer.

    Attributes:
        name: qualified module name.
        type: module class name.
        depth: nesting depth of the module.
        output_shape: output shape without the batch dimension.
        trainable_params / non_trainable_params: the module's own weights (counted on its
            first call only; later calls of a shared module show 0).
        macs: multiply-accumulates of this call, for one sample.
        field: receptive field of the output (None when unknown).
        activation_bytes: memory of the output for one sample.
        size_arithmetic: output-size arithmetic of each conv / pool window this layer ran.
        param_arithmetic: how the parameter count comes about, e.g. ``5x5x1x6 + 6 = 156``.
    """

    name: str
    type: str
    depth: int
    output_shape: tuple[int, ...] | None
    trainable_params: int
    non_trainable_params: int
    macs: int
    field: Field | None
    activation_bytes: int
    size_arithmetic: list[str] = field(default_factory=list)
    param_arithmetic: str | None = None

    @property
    def params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def joins_branches(self) -> bool:
        """A row of a torch call that joins branches (``cat``, ``add``), not of a module."""
        return self.type in JOIN_TYPES

    def to_dict(self, explain: bool = False) -> dict[str, Any]:
        """The row of ``--json``; with ``explain`` also its size and parameter arithmetic."""
        f = self.field
        row = {
            "name": self.name,
            "type": self.type,
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "macs": self.macs,
            "receptive_field": _per_axis(f.size) if f else None,
            "jump": _per_axis(f.jump) if f else None,
            "start": _per_axis(f.start) if f else None,
            "activation_bytes": self.activation_bytes,
        }
        if explain:
            row["size_arithmetic"] = list(self.size_arithmetic)
            row["param_arithmetic"] = self.param_arithmetic
        return row


#: The ``type`` of a row made by a branch-joining torch call (:mod:`cnnlab.analysis.trace`).
JOIN_TYPES = ("cat", "add")


@dataclass(repr=False)
class ModelSummary:
    """Per-layer and total parameters, MACs, receptive fields and memory of a model.

    Totals cover the layers that run in inference (eval mode). Weights of modules that do not
    run then (GoogLeNet's auxiliary classifiers) are reported apart in ``aux_params``.

    Parameter counts (Keras's convention): ``trainable_params`` are the parameters an optimiser
    updates (the count ``cnnlab models`` lists); ``non_trainable_params`` are frozen parameters
    plus ``buffer_params``, BatchNorm's running mean and variance; ``total_params`` is both.
    ``depth``: the depth the rows were folded to (None: every layer).
    """

    model: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    layers: list[LayerInfo]
    trainable_params: int
    non_trainable_params: int
    macs: int
    param_bytes: int
    aux_params: int = 0
    aux_modules: list[str] = field(default_factory=list)
    buffer_params: int = 0
    depth: int | None = None
    activation_total: int | None = None  # of every layer, whatever the depth (None: the rows')

    @property
    def frozen_params(self) -> int:
        """Parameters with ``requires_grad=False`` (frozen for fine-tuning)."""
        return self.non_trainable_params - self.buffer_params

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.non_trainable_params

    @property
    def flops(self) -> int:
        """FLOPs = 2 x MACs."""
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        """Memory of every layer's output for one sample (the same at every ``depth``)."""
        if self.activation_total is not None:
            return self.activation_total
        return sum(layer.activation_bytes for layer in self.layers)

    @property
    def joins_branches(self) -> bool:
        """A row of a torch call that joins branches (``cat``, ``add``), not of a module."""
        return self.type in JOIN_TYPES

    def to_dict(self, explain: bool = False) -> dict[str, Any]:
        """The ``--json`` document (DESIGN.md's keys plus memory, output shape and aux info);
        with ``explain`` each layer also has its ``size_arithmetic`` and ``param_arithmetic``
        (what ``--explain`` prints)."""
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape) if self.output_shape is not None else None,
            "depth": self.depth,
            "layers": [layer.to_dict(explain) for layer in self.layers],
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "buffer_params": self.buffer_params,
            "frozen_params": self.frozen_params,
            "macs": self.macs,
            "flops": self.flops,
            "param_bytes": self.param_bytes,
            "activation_bytes": self.activation_bytes,
            "aux_params": self.aux_params,
            "aux_modules": list(self.aux_modules),
        }

    def table(self) -> str:
        """The text table (also the repr)."""
        return format_table(self)

    def explain(self) -> str:
        """The size and parameter arithmetic of every conv, pool, linear and norm layer."""
        return format_explain(self)

    def __repr__(self) -> str:
        return self.table()
