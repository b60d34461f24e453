"""Receptive fields: size, jump and start of every tensor a model computes.

For a tensor with a spatial grid (``N x C x H x W``) and one axis:

* ``size``: how many input pixels one unit sees (its receptive field);
* ``jump``: distance in input pixels between the fields of neighbouring units;
* ``start``: input coordinate of the centre of unit 0's field (negative or fractional values
  come from padding and even kernels).

A window op (conv or pool; kernel ``k``, stride ``s``, padding ``p``, dilation ``d``) maps
``(size, jump, start)`` to ``(size + d(k-1) jump, jump s, start + (d(k-1)/2 - p) jump)``
(Dumoulin & Visin; Araujo et al., "Computing receptive fields of CNNs"). Where several tensors
meet (a residual addition, an Inception concatenation) a unit sees the union of what its
inputs see, so the field is the smallest interval covering all of them: the largest field over
all paths. A tensor without a spatial grid (after ``flatten``, a linear layer) sees the union of
every unit of its input: ``jump`` is then ``None``.

Seed 003's example: two stacked 3x3 convolutions give ``1 + 2 + 2 = 5``, the field of one 5x5
convolution, with ``9 + 9 = 18`` weights per channel pair instead of 25.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.analysis.torch_calls import argument_tensors, tensors_in
from cnnlab.shapes import Window

Floats = tuple[float, float]


@dataclass(frozen=True)
class Field:
    """Receptive field of the units of one tensor, per axis (H, W); see the module docstring."""

    size: Floats
    jump: Floats | None
    start: Floats

    @staticmethod
    def image() -> Field:
        """The field of the input pixels themselves."""
        return Field((1.0, 1.0), (1.0, 1.0), (0.0, 0.0))

    def window(self, w: Window) -> Field:
        """Field after a convolution or pooling window."""
        if self.jump is None:
            return self
        size, jump, start = [], [], []
        for i in range(2):
            reach = w.dilation[i] * (w.kernel[i] - 1)
            size.append(self.size[i] + reach * self.jump[i])
            start.append(self.start[i] + (reach / 2 - w.padding[i]) * self.jump[i])
            jump.append(self.jump[i] * w.stride[i])
        return Field((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]))

    def shift(self, offset: Floats, step: Floats = (1.0, 1.0)) -> Field:
        """Field after keeping every ``step``-th unit from ``offset`` on (slicing, padding)."""
        if self.jump is None:
            return self
        start = tuple(s + o * j for s, o, j in zip(self.start, offset, self.jump, strict=True))
        jump = tuple(j * k for j, k in zip(self.jump, step, strict=True))
        return Field(self.size, jump, start)  # type: ignore[arg-type]

    def adaptive(self, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> Field:
        """Field after adaptive pooling from ``in_hw`` to ``out_hw``.

        Exact when the sizes divide (then it is a window with kernel = stride = in/out) and for
        global pooling; otherwise the field of the largest window, with a fractional jump.
        """
        if self.jump is None:
            return self
        if out_hw == (1, 1):
            return self.collapse(in_hw)
        size, jump, start = [], [], []
        for i in range(2):
            n, m = in_hw[i], out_hw[i]
            widest = max(math.ceil((j + 1) * n / m) - (j * n) // m for j in range(m))
            size.append(self.size[i] + (widest - 1) * self.jump[i])
            start.append(self.start[i] + (math.ceil(n / m) - 1) / 2 * self.jump[i])
            jump.append(self.jump[i] * n / m)
        return Field((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]))

    def collapse(self, hw: tuple[int, int]) -> Field:
        """The union of the fields of all ``H x W`` units: what a global operation sees."""
        if self.jump is None:
            return self
        lo = [self.start[i] - (self.size[i] - 1) / 2 for i in range(2)]
        hi = [self.start[i] + (hw[i] - 1) * self.jump[i] + (self.size[i] - 1) / 2 for i in range(2)]
        return Field(
            (hi[0] - lo[0] + 1, hi[1] - lo[1] + 1), None, ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2)
        )

    @staticmethod
    def union(fields: Iterable[Field]) -> Field:
        """The smallest field containing all of ``fields`` (unit 0 of each)."""
        fields = list(fields)
        lo = [min(f.start[i] - (f.size[i] - 1) / 2 for f in fields) for i in range(2)]
        hi = [max(f.start[i] + (f.size[i] - 1) / 2 for f in fields) for i in range(2)]
        jumps = [f.jump for f in fields if f.jump is not None]
        jump = (max(j[0] for j in jumps), max(j[1] for j in jumps)) if jumps else None
        return Field(
            (hi[0] - lo[0] + 1, hi[1] - lo[1] + 1), jump, ((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2)
        )


def _hw(t: torch.Tensor) -> tuple[int, int] | None:
    return (int(t.shape[-2]), int(t.shape[-1])) if t.dim() == 4 else None


def _slice_field(field: Field, key: Any, hw: tuple[int, int]) -> Field | None:
    """Field after ``x[key]`` when the key slices H and W with plain slices, else None."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis or k is None or isinstance(k, torch.Tensor) for k in key) or len(key) > 4:
        return None
    key = key + (slice(None),) * (4 - len(key))
    if not all(isinstance(k, slice) for k in key[2:]):
        return None
    offset, step = [], []
    for i, k in enumerate(key[2:]):
        first, _, stride = k.indices(hw[i])
        offset.append(float(first))
        step.append(float(stride))
    return field.shift((offset[0], offset[1]), (step[0], step[1]))


def _pad_field(field: Field, pad: Any) -> Field:
    pad = list(pad) + [0] * (4 - len(pad))  # (left, right, top, bottom, ...)
    return field.shift((-float(pad[2]), -float(pad[0])))


class FieldTracker:
    """Follows the field of every tensor through a forward pass, one torch call at a time.

    Tensors are identified by ``id``; the tracker keeps a reference to each tracked tensor so
    an id cannot be reused during the pass.
    """

    def __init__(self) -> None:
        self._fields: dict[int, Field | None] = {}
        self._keep: list[torch.Tensor] = []

    def set(self, t: torch.Tensor, field: Field | None) -> None:
        self._fields[id(t)] = field
        self._keep.append(t)

    def get(self, t: torch.Tensor) -> Field | None:
        return self._fields.get(id(t))

    def tracked(self, t: torch.Tensor) -> bool:
        return id(t) in self._fields

    def update(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        out: Any,
        window: Window | None,
    ) -> None:
        """Record the fields of the tensors in ``out = func(*args, **kwargs)``."""
        inputs = [t for t in argument_tensors(args, kwargs) if self.tracked(t)]
        if not inputs:
            return
        for t in tensors_in(out):
            self.set(t, self._rule(func, args, inputs, t, window))

    def _rule(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        inputs: list[torch.Tensor],
        out: torch.Tensor,
        window: Window | None,
    ) -> Field | None:
        first, hw = self.get(inputs[0]), _hw(out)
        if window is not None:
            return None if first is None else first.window(window)
        in_hw = _hw(inputs[0])
        if first is not None and in_hw is not None and hw is not None:
            if func in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d):
                return first.adaptive(in_hw, hw)
            if func is F.pad and len(args) > 1:
                return _pad_field(first, args[1])
            if func is torch.Tensor.__getitem__ and hw != in_hw:
                return _slice_field(first, args[1], in_hw)
        # Element-wise ops, concatenation, reshapes: the union of what the inputs see,
        # collapsing inputs whose grid the output does not keep.
        fields: list[Field] = []
        for t in inputs:
            f, t_hw = self.get(t), _hw(t)
            if f is None:
                return None
            if t_hw is not None and t_hw != hw:
                if hw is not None and t_hw != (1, 1):
                    return None  # an unknown resampling: no claim
                f = f.collapse(t_hw)
            fields.append(f)
        return Field.union(fields)
