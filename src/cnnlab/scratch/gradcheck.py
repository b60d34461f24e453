"""Numerical gradient check: central differences in float64, relative error per tensor.

``gradcheck(f, arrays, grads)`` compares analytic gradients with
``(f(x + eps) - f(x - eps)) / (2 eps)`` element by element (optionally on a random subset of
elements per tensor, for big models). :func:`gradcheck_module` does it for a layer or model:
parameters and input, with the scalar loss ``sum(output * R)`` for a fixed random ``R``.

Kinks. ReLU and max pooling are piecewise smooth: a central difference whose two evaluations
lie on different pieces (a ReLU input changes sign, a max-pool window changes its winner within
the step) measures the average of two slopes, not the gradient. :func:`gradcheck_module` watches
every such layer: an element whose perturbed passes change the on/off pattern of a ReLU or the
argmax of a max pool is checked again with smaller steps (:data:`KINK_STEPS`), and left out
(counted in :attr:`TensorCheck.skipped`) if even the smallest step crosses a kink.

Round-off. A gradient that is exactly zero (a BatchNorm bias whose channel is constant, a bias
before a train-mode BatchNorm) is compared with a central difference of round-off alone, so its
relative error is 1 whatever the engine does. A tensor therefore also passes when its largest
absolute difference is within ``max(atol, ROUNDOFF x the largest analytic gradient of any
tensor)``: round-off relative to the model's own gradient scale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlab.scratch.graph import GraphNet
from cnnlab.scratch.graph_ops import LayerOp
from cnnlab.scratch.nn.activation import LeakyReLU, ReLU
from cnnlab.scratch.nn.module import Module
from cnnlab.scratch.nn.pooling import MaxPool2d

#: Steps (as fractions of ``eps``) tried again for an element whose difference crosses a kink.
KINK_STEPS = (1e-1, 1e-2)
#: A failing element is reported as "near a kink" when a step this many times ``eps`` crosses one.
NEAR_KINK = 10.0
#: Absolute differences up to this fraction of the largest analytic gradient count as round-off
#: (GoogLeNet at 3x32x32: gradients up to 8.4e3, a zero BatchNorm-bias gradient measured as
#: 5.6e-7, i.e. 7e-11 of it; 1e-8 leaves a margin of 100).
ROUNDOFF = 1e-8

#: The on/off pattern of every kinked layer after a forward pass (``None``: no kink watch).
KinkState = Callable[[], list[np.ndarray]]


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``||a - n|| / max(||a|| + ||n||, tiny)`` (0 when both vanish)."""
    scale = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    if scale == 0.0:
        return 0.0
    return float(np.linalg.norm(analytic - numeric)) / scale


@dataclass
class WorstElement:
    """The element of a tensor with the largest absolute difference.

    Attributes:
        index: its index in the tensor (a tuple, one entry per dimension).
        numeric: the central difference.
        analytic: the backward pass's gradient.
        step: the finite-difference step used for it.
        near_kink: whether a step of ``NEAR_KINK * eps`` crosses a ReLU or max-pool kink
            (``None`` when not looked at: the tensor passed, or no kink watch).
    """

    index: tuple[int, ...]
    numeric: float
    analytic: float
    step: float
    near_kink: bool | None = None


@dataclass
class TensorCheck:
    """The check of one tensor.

    Attributes:
        name: parameter name (``state_dict`` key) or ``"input"``.
        shape: the tensor's shape.
        relative_error: over the compared elements (see :func:`relative_error`).
        abs_error: the largest absolute difference.
        checked: elements compared.
        retried: of those, elements compared with a smaller step (the first crossed a kink).
        skipped: elements left out: every step crossed a kink.
        worst: the element with the largest absolute difference (``None`` if none compared).
    """

    name: str
    shape: tuple[int, ...]
    relative_error: float
    abs_error: float
    checked: int
    retried: int = 0
    skipped: int = 0
    worst: WorstElement | None = None


@dataclass
class GradcheckResult:
    """Per-tensor relative errors (and largest absolute differences).

    A tensor passes when its relative error is within ``tolerance`` or, for gradients that are
    zero up to round-off (e.g. a bias followed by batch norm), its largest absolute difference
    is within ``atol`` (:func:`gradcheck` raises it to :data:`ROUNDOFF` times the largest
    analytic gradient of any tensor).
    """

    errors: dict[str, float]
    tolerance: float
    checked_elements: dict[str, int] = field(default_factory=dict)
    abs_errors: dict[str, float] = field(default_factory=dict)
    atol: float = 1e-8
    tensors: dict[str, TensorCheck] = field(default_factory=dict)

    def tensor_passed(self, name: str) -> bool:
        return self.errors[name] <= self.tolerance or self.abs_errors.get(name, 1.0) <= self.atol

    @property
    def passed(self) -> bool:
        return all(self.tensor_passed(name) for name in self.errors)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def skipped(self) -> int:
        """Elements left out in all tensors (every step crossed a kink)."""
        return sum(t.skipped for t in self.tensors.values())

    @property
    def retried(self) -> int:
        """Elements compared with a smaller step in all tensors."""
        return sum(t.retried for t in self.tensors.values())

    def __repr__(self) -> str:
        rows = "\n".join(
            f"  {name:<40} rel {err:.3e} abs {self.abs_errors.get(name, float('nan')):.3e} "
            f"{'ok' if self.tensor_passed(name) else 'FAIL'}"
            for name, err in self.errors.items()
        )
        return f"GradcheckResult(passed={self.passed}, tolerance={self.tolerance:.1e})\n{rows}"


def gradcheck(
    f: Callable[[], float],
    arrays: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    eps: float = 1e-6,
    tolerance: float = 1e-6,
    max_elements: int | None = None,
    rng: np.random.Generator | None = None,
    atol: float = 1e-8,
    kinks: KinkState | None = None,
    on_tensor: Callable[[TensorCheck, bool], None] | None = None,
    base_kinks: list[np.ndarray] | None = None,
) -> GradcheckResult:
    """Compare analytic gradients with central differences of ``f``.

    Args:
        f: recomputes the scalar loss from the *current* contents of ``arrays``.
        arrays: float64 arrays that ``f`` reads; perturbed in place and restored.
        grads: analytic gradient of ``f`` for each name in ``arrays``.
        eps: finite-difference step.
        tolerance: largest acceptable relative error.
        max_elements: check at most this many random elements per tensor (all if ``None``).
        rng: generator for that subset.
        atol: a tensor whose largest absolute difference is within this, or within
            :data:`ROUNDOFF` times the largest analytic gradient in ``grads``, also passes.
        kinks: the kink pattern of the last ``f()`` (ReLU signs, max-pool argmaxes); when
            given, differences that change it are retried with smaller steps or left out.
        on_tensor: called with each tensor's check and whether it passed, as it finishes.
        base_kinks: ``kinks()`` at the unperturbed point, if already known (saves a pass).

    Returns:
        A :class:`GradcheckResult` with the relative error of each tensor.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    scale = max((_largest_magnitude(g) for g in grads.values()), default=0.0)
    atol = max(atol, ROUNDOFF * scale)  # round-off of the loss, relative to the gradients
    base = base_kinks
    if kinks is not None and base is None:
        f()
        base = kinks()

    def crossed() -> bool:
        return base is not None and _changed(base, kinks())  # type: ignore[misc]

    def difference(flat: np.ndarray, i: int, step: float) -> tuple[float, bool]:
        """Central difference at ``flat[i]`` and whether either side crossed a kink."""
        old = flat[i]
        try:
            flat[i] = old + step
            plus = f()
            kinked = crossed()
            flat[i] = old - step
            minus = f()
            kinked = kinked or crossed()
        finally:
            flat[i] = old
        return (plus - minus) / (2 * step), kinked

    result = GradcheckResult({}, tolerance, atol=atol)
    for name, array in arrays.items():
        if array.dtype != np.float64:
            raise ValueError(
                f"expected float64 arrays for gradcheck, received {name}: {array.dtype}"
            )
        if not array.flags.c_contiguous:
            raise ValueError(f"expected a C-contiguous array for gradcheck, received {name}")
        flat = array.reshape(-1)  # a view: perturbing it perturbs the array
        idx = np.arange(flat.size)
        if max_elements is not None and flat.size > max_elements:
            idx = rng.choice(flat.size, size=max_elements, replace=False)
        kept, numeric, steps, retried = [], [], [], 0
        for i in idx:
            value, kinked = difference(flat, int(i), eps)
            step = eps
            for fraction in KINK_STEPS if kinked else ():
                step = eps * fraction
                value, kinked = difference(flat, int(i), step)
                if not kinked:
                    break
            if kinked:
                continue  # every step crosses a kink: no central difference measures the slope
            retried += step != eps
            kept.append(int(i))
            numeric.append(value)
            steps.append(step)
        analytic = np.asarray(grads[name], dtype=np.float64).reshape(-1)[kept]
        num = np.asarray(numeric, dtype=np.float64)
        diff = np.abs(analytic - num)
        check = TensorCheck(
            name,
            tuple(array.shape),
            relative_error(analytic, num),
            float(diff.max(initial=0.0)),
            len(kept),
            retried,
            int(idx.size) - len(kept),
        )
        if kept:
            k = int(diff.argmax())
            index = tuple(int(v) for v in np.unravel_index(kept[k], array.shape))
            check.worst = WorstElement(index, float(num[k]), float(analytic[k]), steps[k])
        result.tensors[name] = check
        result.errors[name] = check.relative_error
        result.abs_errors[name] = check.abs_error
        result.checked_elements[name] = check.checked
        passed = result.tensor_passed(name)
        if not passed and check.worst is not None and base is not None:
            flat_index = kept[int(diff.argmax())]
            check.worst.near_kink = difference(flat, flat_index, NEAR_KINK * eps)[1]
        if on_tensor is not None:
            on_tensor(check, passed)
    return result


def _largest_magnitude(a: np.ndarray) -> float:
    """``max |a|`` (0 for an empty array) in two reductions, without an ``|a|`` temporary
    (VGG's classifier gradient alone is 0.8 GB in float64)."""
    return max(float(np.max(a, initial=0.0)), -float(np.min(a, initial=0.0)))


def _changed(base: Sequence[np.ndarray], now: Sequence[np.ndarray]) -> bool:
    return len(base) != len(now) or any(
        a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(base, now)
    )


def _layer_kinks(layer: Module, cache: Any) -> np.ndarray | None:
    """The pattern that decides which smooth piece a kinked layer is on, from its cache."""
    if isinstance(layer, ReLU | LeakyReLU):  # ReLU caches its output, LeakyReLU its input
        return np.asarray(cache) > 0
    if isinstance(layer, MaxPool2d) and getattr(cache, "argmax", None) is not None:
        return cache.argmax.copy()
    return None


def kink_state(module: Module) -> list[np.ndarray]:
    """The on/off pattern of every ReLU and the argmax of every max pool in ``module``'s last
    forward pass (that kept its caches): two passes on the same smooth piece give equal
    patterns."""
    states: list[np.ndarray | None] = []
    tape = module.__dict__.get("_tape") if isinstance(module, GraphNet) else None
    if tape is not None:
        for node in tape.graph.nodes:
            if isinstance(node.op, LayerOp) and node.name in tape.caches:
                states.append(_layer_kinks(node.op.layer, tape.caches[node.name]))
    else:
        for layer in module.modules():
            states.append(_layer_kinks(layer, layer.__dict__.get("_cache")))
    return [s for s in states if s is not None]


def gradcheck_module(
    module: Module,
    x: np.ndarray,
    eps: float = 1e-6,
    tolerance: float = 1e-6,
    max_elements: int | None = None,
    seed: int = 0,
    atol: float = 1e-8,
    names: Sequence[str] | None = None,
    on_tensor: Callable[[TensorCheck, bool], None] | None = None,
) -> GradcheckResult:
    """Gradient check of a layer or model (converted to float64 in place) and its input.

    Uses the loss ``sum(module(x) * R)`` with a fixed random ``R``. Train-mode layers with
    randomness (dropout) must be in ``eval()`` mode; BatchNorm's running statistics are
    restored afterwards. Differences that cross a ReLU or max-pool kink are retried with a
    smaller step or left out (see the module docstring).

    Args:
        module: the layer or model.
        x: its input batch.
        eps: central-difference step.
        tolerance: largest acceptable relative error per tensor.
        max_elements: random elements checked per tensor (``None``: all).
        seed: seeds ``R`` and the element sample.
        atol: a tensor whose largest absolute difference is within this also passes.
        names: the tensors to check (parameter names and/or ``"input"``; default: all).
        on_tensor: called with each tensor's check and whether it passed, as it finishes.

    Returns:
        Errors keyed by parameter name (as in ``state_dict``) plus ``"input"``.
    """
    module.to(np.float64)
    x = np.array(x, dtype=np.float64, copy=True)
    # forward passes in training mode move BatchNorm's running statistics; the parameters
    # are put back element by element as they are perturbed, so only buffers are saved
    saved = {name: np.array(b, copy=True) for name, b in module.named_buffers()}
    rng = np.random.default_rng(seed)
    out = module.forward(x)
    base = kink_state(module)  # before backward, which consumes the caches
    projection = rng.standard_normal(out.shape)
    module.zero_grad()
    grad_x = module.backward(projection)
    params = dict(module.named_parameters())
    arrays = {name: p.data for name, p in params.items()}
    grads = {
        name: p.grad if p.grad is not None else np.zeros_like(p.data) for name, p in params.items()
    }
    arrays["input"], grads["input"] = x, grad_x if grad_x is not None else np.zeros_like(x)
    if names is not None:
        arrays = {name: arrays[name] for name in names}

    def loss() -> float:
        return float(np.sum(module.forward(x) * projection))

    try:
        return gradcheck(
            loss,
            arrays,
            grads,
            eps,
            tolerance,
            max_elements,
            rng,
            atol,
            kinks=lambda: kink_state(module),
            on_tensor=on_tensor,
            base_kinks=base,
        )
    finally:
        module.load_state_dict(saved, strict=False)
