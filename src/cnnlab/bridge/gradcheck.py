"""``cnnlab gradcheck MODEL|OP``: the NumPy engine's hand-written gradients against central
differences, in float64, one relative error per parameter tensor (and the input).

A MODEL (registered name, ``file.py:callable`` or module) is traced by the bridge; an OP is one
scratch layer from :data:`OPS` with small made-up sizes. Models are checked in training mode
(batch statistics in BatchNorm; GoogLeNet's auxiliary heads are built but only the main logits
enter the loss) with dropout switched off, since a random mask would change between the
perturbed evaluations.

``seed`` seeds everything (weights, input, projection, checked tensors and elements), so a run
is reproduced by its seed. Differences that cross a ReLU or max-pool kink are checked again with
smaller steps or left out and counted; a failing tensor names its worst element with both values
and whether a kink lies near it. Sizes at which every zoo model passes on five seeds (the test
``tests/bridge/test_gradcheck_zoo.py``): docs/numpy-engine.md, "Gradient check".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.bridge.convert import to_scratch
from cnnlab.errors import ConfigError, ModelError
from cnnlab.scratch import nn as snn
from cnnlab.scratch.gradcheck import NEAR_KINK, GradcheckResult, TensorCheck, gradcheck_module

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
        seed: the seed of the weights, input, projection and element sample.
        eps: the central-difference step.
    """

    target: str
    input_shape: Shape
    batch: int
    result: GradcheckResult
    seed: int = 0
    eps: float = 1e-6

    @property
    def passed(self) -> bool:
        return self.result.passed

    def lines(self) -> list[str]:
        """One line per tensor (and an explanation under each failure), then the verdict."""
        checks = list(self.result.tensors.values())
        rows: list[str] = []
        for k, check in enumerate(checks, 1):
            rows.extend(tensor_lines(check, self.result.tensor_passed(check.name), k, len(checks)))
        rows.append(self.verdict())
        return rows

    def verdict(self) -> str:
        """The last line: passed or how many tensors failed, the largest error, kink counts."""
        r = self.result
        failed = sum(not r.tensor_passed(name) for name in r.errors)
        verdict = "passed" if self.passed else f"FAILED ({failed} tensors)"
        shape = "x".join(str(v) for v in self.input_shape)
        line = (
            f"gradcheck {self.target} input {self.batch}x{shape} seed {self.seed}: {verdict}, "
            f"max relative error {r.max_error:.2e} (tolerance {r.tolerance:.0e}; absolute "
            f"differences up to {r.atol:.1e} count as round-off)"
        )
        if r.retried or r.skipped:
            line += (
                f"; kinks: {r.retried} elements checked with a smaller step, {r.skipped} left "
                f"out (every step crossed a ReLU or max-pool kink)"
            )
        return line

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "target": self.target,
            "input_shape": list(self.input_shape),
            "batch": self.batch,
            "seed": self.seed,
            "eps": self.eps,
            "passed": self.passed,
            "tolerance": r.tolerance,
            "atol": r.atol,
            "max_relative_error": r.max_error,
            "retried_elements": r.retried,
            "skipped_elements": r.skipped,
            "tensors": [
                {
                    "name": c.name,
                    "shape": list(c.shape),
                    "relative_error": c.relative_error,
                    "abs_error": c.abs_error,
                    "elements": c.checked,
                    "retried_elements": c.retried,
                    "skipped_elements": c.skipped,
                    "passed": r.tensor_passed(c.name),
                    "worst": None if c.worst is None else asdict(c.worst),
                }
                for c in r.tensors.values()
            ],
        }


def tensor_lines(check: TensorCheck, passed: bool, k: int, total: int) -> list[str]:
    """``[k/total] name  rel ...  ok|FAIL``, and under a failure its worst element explained."""
    width = len(str(total))
    row = (
        f"[{k:>{width}}/{total}] {check.name}  rel {check.relative_error:.2e}  "
        f"abs {check.abs_error:.2e}  n={check.checked} {'ok' if passed else 'FAIL'}"
    )
    if check.retried or check.skipped:
        row += f"  (kinks: {check.retried} at a smaller step, {check.skipped} left out)"
    lines = [row]
    worst = check.worst
    if not passed and worst is not None:
        index = ", ".join(str(i) for i in worst.index)
        kink = {
            None: "kink not looked at",
            True: f"a ReLU or max-pool kink lies within {NEAR_KINK:g}x the step: the difference "
            "may measure two slopes; try --seed or a smaller --eps",
            False: f"no ReLU or max-pool kink within {NEAR_KINK:g}x the step",
        }[worst.near_kink]
        lines.append(
            f"    worst element {check.name}[{index}]: numerical {worst.numeric:.6e}, "
            f"analytic {worst.analytic:.6e} (step {worst.step:.0e}); {kink}"
        )
    return lines


def check_gradients(
    target: str | nn.Module,
    input_shape: Shape | None = None,
    *,
    batch: int = 2,
    num_classes: int | None = None,
    max_elements: int | None = 8,
    max_tensors: int | None = None,
    tolerance: float = 1e-6,
    eps: float = 1e-6,
    seed: int = 0,
    on_tensor: Callable[[TensorCheck, bool, int, int], None] | None = None,
) -> GradcheckReport:
    """Numerical gradient check of a model or op in the NumPy engine.

    Differences that cross a ReLU or max-pool kink are checked again with smaller steps, or
    left out and counted (see :mod:`cnnlab.scratch.gradcheck`).

    Args:
        target: registered model name, ``file.py:callable``, an ``nn.Module``, or an op name
            from :data:`OPS`.
        input_shape: ``(C, H, W)``; default: the model's default input, or 3x7x7 for ops.
        batch: images per batch.
        num_classes: model outputs (default: the model's own).
        max_elements: checked elements per tensor, drawn at random (``None``: all); ops are
            always checked in full.
        max_tensors: check this many parameter tensors drawn at random, plus the input
            (``None``: every tensor).
        tolerance: largest acceptable relative error per tensor.
        eps: central-difference step.
        seed: seeds everything: the weights (a registered or file model is built under
            ``torch.manual_seed(seed)``; an ``nn.Module`` keeps its own), the input, the loss's
            projection and the checked tensors and elements.
        on_tensor: called with each tensor's check, whether it passed, its number and the
            number of tensors, as soon as it finishes.

    Returns:
        A :class:`GradcheckReport`.

    Raises:
        ModelError: unknown model or op (or one the NumPy engine cannot run).
        ConfigError: an impossible input shape, batch, step or count.
    """
    if batch < 1:
        raise ConfigError(f"expected a batch of at least 1, received batch={batch}")
    if not 0 < eps < 1:
        raise ConfigError(f"expected a step 0 < eps < 1, received eps={eps}")
    for label, count in (("max_elements", max_elements), ("max_tensors", max_tensors)):
        if count is not None and count < 1:
            raise ConfigError(f"expected {label} of at least 1 (or None), received {count}")
    rng = np.random.default_rng(seed)
    if isinstance(target, str) and target in OPS:
        shape = tuple(input_shape or OP_INPUT)
        module, name, max_elements = OPS[target](shape, rng), target, None
    else:
        model, name = _torch_model(target, num_classes, seed)
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
    names = _tensor_sample(module, max_tensors, np.random.default_rng([seed, 2]))
    total = len(names) if names is not None else len(list(module.named_parameters())) + 1
    done = 0

    def report(check: TensorCheck, passed: bool) -> None:
        nonlocal done
        done += 1
        if on_tensor is not None:
            on_tensor(check, passed, done, total)

    try:
        result = gradcheck_module(
            module, x, eps, tolerance, max_elements, seed, names=names, on_tensor=report
        )
    except ValueError as exc:  # a shape the layers reject, with their own "expected ..." line
        raise ConfigError(f"{exc} (gradcheck {name}, input {batch}x{shape})") from None
    return GradcheckReport(name, shape, batch, result, seed, eps)


def _tensor_sample(
    module: snn.Module, max_tensors: int | None, rng: np.random.Generator
) -> list[str] | None:
    """``max_tensors`` parameter names drawn at random (in model order), then ``"input"``."""
    names = [name for name, _ in module.named_parameters()]
    if max_tensors is None or max_tensors >= len(names):
        return None
    chosen = np.sort(rng.choice(len(names), size=max_tensors, replace=False))
    return [names[i] for i in chosen] + ["input"]


def _torch_model(
    target: str | nn.Module, num_classes: int | None, seed: int
) -> tuple[nn.Module, str]:
    """The model to check; a registered or file model is built with weights from ``seed``
    (the caller's torch generator is left as it was)."""
    from cnnlab.analysis.source import is_file_spec, load_model_from_file
    from cnnlab.models import create_model, list_models

    if isinstance(target, nn.Module):
        return target, type(target).__name__
    if is_file_spec(target):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return load_model_from_file(target, num_classes=num_classes), target
    if target not in list_models():
        raise ModelError(
            f"expected a registered model ({', '.join(list_models())}), file.py:callable or "
            f"an op ({', '.join(OPS)}), received {target!r}"
        )
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(target, **kwargs), target
