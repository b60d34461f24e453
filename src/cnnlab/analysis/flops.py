"""Multiply-accumulate (MAC) counting rules, one per kind of torch operation.

The rules are applied to every torch function a model calls during the summary's shape pass,
so they count what modules do (``nn.Conv2d``, ``nn.Linear``) and what a ``forward`` does with
functional calls alike. A MAC is one multiplication added to an accumulator:

* convolution: ``output elements x (in_channels / groups) x kernel area``; the bias is not a
  MAC (seed 002: a 5x5 conv from 28x28x192 to 28x28x32 is ``28*28*32 * 5*5*192 = 120,422,400``);
* transposed convolution: ``input elements x (out_channels / groups) x kernel area``;
* linear layer and matrix products: ``output elements x inner dimension``.

Counts are per sample: the leading (batch) dimension of the output is left out, so the rules
give the same number on the summary's empty batch as on one image.

Element-wise operations, normalisation, activations and pooling count 0 MACs, as in the
seeds' arithmetic and in ``torch.utils.flop_counter`` (whose FLOPs are 2 x these MACs).
FLOPs are everywhere 2 x MACs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

Rule = Callable[[tuple[Any, ...], dict[str, Any], Any], int]


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs[name]


def _per_sample(t: torch.Tensor) -> int:
    return math.prod(t.shape[1:]) if t.dim() > 1 else t.numel()


def _conv(args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor) -> int:
    weight = _arg(args, kwargs, 1, "weight")  # (C_out, C_in / groups, *kernel)
    return _per_sample(out) * math.prod(weight.shape[1:])


def _conv_transpose(args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor) -> int:
    x, weight = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    return _per_sample(x) * math.prod(weight.shape[1:])  # weight: (C_in, C_out / groups, *kernel)


def _linear(args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor) -> int:
    weight = _arg(args, kwargs, 1, "weight")  # (out_features, in_features)
    return _per_sample(out) * weight.shape[-1]


def _matmul(first: int) -> Rule:
    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor) -> int:
        a = args[first]
        return _per_sample(out) * (a.shape[-1] if a.dim() > 1 else a.shape[0])

    return rule


RULES: dict[Callable[..., Any], Rule] = {
    torch.conv1d: _conv,
    torch.conv2d: _conv,
    torch.conv3d: _conv,
    torch.conv_transpose1d: _conv_transpose,
    torch.conv_transpose2d: _conv_transpose,
    torch.conv_transpose3d: _conv_transpose,
    F.linear: _linear,
    torch.matmul: _matmul(0),
    torch.mm: _matmul(0),
    torch.bmm: _matmul(0),
    torch.Tensor.matmul: _matmul(0),
    torch.Tensor.__matmul__: _matmul(0),
    torch.Tensor.mm: _matmul(0),
    torch.Tensor.bmm: _matmul(0),
    torch.addmm: _matmul(1),
    torch.baddbmm: _matmul(1),
}


def macs_of(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
) -> int:
    """MACs of one call ``out = func(*args, **kwargs)``; 0 for operations without a rule."""
    rule = RULES.get(func)
    if rule is None or not isinstance(out, torch.Tensor):
        return 0
    return int(rule(args, kwargs, out))
