"""``cnnlab gradcheck MODEL|OP``: the NumPy engine's hand-written gradients against central
differences, in float64, one relative error per parameter tensor (and the input).

A MODEL (registered name, ``file.py:callable`` or module) is traced by the bridge; an OP is one
scratch layer from :data:`OPS` with small made-up sizes. Models are checked in training mode
(batch statistics in BatchNorm; GoogLeNet's auxiliary heads are built but only the main logits
enter the loss) with dropout switched off, since a random mask would change between the
perturbed evaluations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from cnnlab.bridge.convert import to_scratch
from cnnlab.errors import ConfigError, ModelError
from cnnlab.scratch import nn as snn
from cnnlab.scratch.gradcheck import GradcheckResult, gradcheck_module

Shape = tuple[int, int, int]
F64 = np.float64


def _conv(depthwise: bool = False, **kwargs: Any) -> Callable[[Shape, np.random.Generator], Any]:
    """A 3x3 convolution to 4 channels (or a depthwise one, ``groups = C``)."""

    def make(s: Shape, rng: np.random.Generator) -> snn.Module:
        out, groups = (s[0], s[0]) if depthwise else (4, 1)
        return snn.Conv2d(s[0], out, 3, groups=groups, dtype=F64, rng=rng, **kwargs)

    return make


#: OP name -> scratch layer for an input of ``(C, H, W)`` (float64, generator for its weights).
OPS: dict[str, Callable[[Shape, np.random.Generator], snn.Module]] = {
    "conv2d": _conv(stride=2, padding=1),
    "conv2d_dilated": _conv(padding=2, dilation=2),
    "conv2d_grouped": _conv(depthwise=True, padding=1),
    "linear": lambda s, rng: snn.Sequential(
        snn.Flatten(), snn.Linear(s[0] * s[1] * s[2], 5, dtype=F64, rng=rng)
    ),
    "max_pool2d": lambda s, rng: snn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
    "avg_pool2d": lambda s, rng: snn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    "adaptive_avg_pool2d": lambda s, rng: snn.AdaptiveAvgPool2d((3, 2)),
    "batch_norm": lambda s, rng: snn.BatchNorm2d(s[0], dtype=F64),
    "local_response_norm": lambda s, rng: snn.LocalResponseNorm(3),
    "relu": lambda s, rng: snn.ReLU(),
    "leaky_relu": lambda s, rng: snn.LeakyReLU(0.1),
    "sigmoid": lambda s, rng: snn.Sigmoid(),
    "tanh": lambda s, rng: snn.Tanh(),
    "gelu": lambda s, rng: snn.GELU(),
}
OP_INPUT: Shape = (3, 7, 7)


@dataclass
class GradcheckReport:
    """A gradient check of one model or op.

    Attributes:
        target: the model or op name.
        input_shape: ``(C, H, W)`` of the checked input (batch not included).
        batch: images in the batch.
        result: per-tensor relative errors (:class:`~cnnlab.scratch.gradcheck.GradcheckResult`).
    """

    target: str
    input_shape: Shape
    batch: int
    result: GradcheckResult

    @property
    def passed(self) -> bool:
        return self.result.passed

    def lines(self) -> list[str]:
        """One line per tensor, then a verdict line."""
        r = self.result
        width = max((len(name) for name in r.errors), default=6)
        rows = [
            f"{name:<{width}}  rel {err:.2e}  abs {r.abs_errors[name]:.2e}  "
            f"n={r.checked_elements[name]:<5} {'ok' if r.tensor_passed(name) else 'FAIL'}"
            for name, err in r.errors.items()
        ]
        failed = sum(not r.tensor_passed(name) for name in r.errors)
        verdict = "passed" if self.passed else f"FAILED ({failed} tensors)"
        shape = "x".join(str(v) for v in self.input_shape)
        rows.append(
            f"gradcheck {self.target} input {self.batch}x{shape}: {verdict}, max relative "
            f"error {r.max_error:.2e} (tolerance {r.tolerance:.0e})"
        )
        return rows

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "target": self.target,
            "input_shape": list(self.input_shape),
            "batch": self.batch,
            "passed": self.passed,
            "tolerance": r.tolerance,
            "max_relative_error": r.max_error,
            "tensors": [
                {
                    "name": name,
                    "relative_error": err,
                    "abs_error": r.abs_errors[name],
                    "elements": r.checked_elements[name],
                    "passed": r.tensor_passed(name),
                }
                for name, err in r.errors.items()
            ],
        }


def check_gradients(
    target: str | nn.Module,
    input_shape: Shape | None = None,
    *,
    batch: int = 2,
    num_classes: int | None = None,
    max_elements: int | None = 8,
    tolerance: float = 1e-6,
    eps: float = 1e-6,
    seed: int = 0,
) -> GradcheckReport:
    """Numerical gradient check of a model or op in the NumPy engine.

    Args:
        target: registered model name, ``file.py:callable``, an ``nn.Module``, or an op name
            from :data:`OPS`.
        input_shape: ``(C, H, W)``; default: the model's default input, or 3x7x7 for ops.
        batch: images per batch.
        num_classes: model outputs (default: the model's own).
        max_elements: checked elements per tensor, drawn at random (``None``: all); ops are
            always checked in full.
        tolerance: largest acceptable relative error per tensor.
        eps: central-difference step.
        seed: input, weights (ops) and element sample.

    Returns:
        A :class:`GradcheckReport`.

    Raises:
        ModelError: unknown model or op (or one the NumPy engine cannot run).
        ConfigError: an impossible input shape or batch.
    """
    if batch < 1:
        raise ConfigError(f"expected a batch of at least 1, received batch={batch}")
    rng = np.random.default_rng(seed)
    if isinstance(target, str) and target in OPS:
        shape = tuple(input_shape or OP_INPUT)
        module, name, max_elements = OPS[target](shape, rng), target, None
    else:
        model, name = _torch_model(target, num_classes)
        shape = tuple(input_shape or getattr(model, "default_input_shape", ()))
        if len(shape) != 3:
            raise ConfigError(f"expected --input C,H,W for {name}, received {input_shape!r}")
        module = to_scratch(model, np.float64).train()
        for layer in module.modules():
            if isinstance(layer, snn.Dropout):
                layer.eval()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"expected an input shape C,H,W of positive sizes, received {shape}")
    # its own stream: gradcheck_module draws its projection R from default_rng(seed), and an
    # input equal to R would make e.g. BatchNorm's input gradient cancel to round-off
    x = np.random.default_rng([seed, 1]).standard_normal((batch, *shape))
    try:
        result = gradcheck_module(module, x, eps, tolerance, max_elements, seed)
    except ValueError as exc:  # a shape the layers reject, with their own "expected ..." line
        raise ConfigError(f"{exc} (gradcheck {name}, input {batch}x{shape})") from None
    return GradcheckReport(name, shape, batch, result)


def _torch_model(target: str | nn.Module, num_classes: int | None) -> tuple[nn.Module, str]:
    from cnnlab.analysis.source import is_file_spec, load_model_from_file
    from cnnlab.models import create_model, list_models

    if isinstance(target, nn.Module):
        return target, type(target).__name__
    if is_file_spec(target):
        return load_model_from_file(target, num_classes=num_classes), target
    if target not in list_models():
        raise ModelError(
            f"expected a registered model ({', '.join(list_models())}), file.py:callable or "
            f"an op ({', '.join(OPS)}), received {target!r}"
        )
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    return create_model(target, **kwargs), target
