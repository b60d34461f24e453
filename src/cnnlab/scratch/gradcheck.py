"""Numerical gradient check: central differences in float64, relative error per tensor.

``gradcheck(f, arrays, grads)`` compares analytic gradients with
``(f(x + eps) - f(x - eps)) / (2 eps)`` element by element (optionally on a random subset of
elements per tensor, for big models). :func:`gradcheck_module` does it for a layer or model:
parameters and input, with the scalar loss ``sum(output * R)`` for a fixed random ``R``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from cnnlab.scratch.nn.module import Module


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``||a - n|| / max(||a|| + ||n||, tiny)`` (0 when both vanish)."""
    scale = float(np.linalg.norm(analytic) + np.linalg.norm(numeric))
    if scale == 0.0:
        return 0.0
    return float(np.linalg.norm(analytic - numeric)) / scale


@dataclass
class GradcheckResult:
    """Per-tensor relative errors (and largest absolute differences).

    A tensor passes when its relative error is within ``tolerance`` or, for gradients that are
    zero up to round-off (e.g. a bias followed by batch norm), its largest absolute difference
    is within ``atol``.
    """

    errors: dict[str, float]
    tolerance: float
    checked_elements: dict[str, int] = field(default_factory=dict)
    abs_errors: dict[str, float] = field(default_factory=dict)
    atol: float = 1e-8

    def tensor_passed(self, name: str) -> bool:
        return self.errors[name] <= self.tolerance or self.abs_errors.get(name, 1.0) <= self.atol

    @property
    def passed(self) -> bool:
        return all(self.tensor_passed(name) for name in self.errors)

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

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
        atol: a tensor whose largest absolute difference is within this also passes.

    Returns:
        A :class:`GradcheckResult` with the relative error of each tensor.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    errors, abs_errors, counts = {}, {}, {}
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
        numeric = np.empty(idx.size)
        for k, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + eps
            plus = f()
            flat[i] = old - eps
            minus = f()
            flat[i] = old
            numeric[k] = (plus - minus) / (2 * eps)
        analytic = np.asarray(grads[name], dtype=np.float64).reshape(-1)[idx]
        errors[name] = relative_error(analytic, numeric)
        abs_errors[name] = float(np.abs(analytic - numeric).max(initial=0.0))
        counts[name] = int(idx.size)
    return GradcheckResult(errors, tolerance, counts, abs_errors, atol)


def gradcheck_module(
    module: Module,
    x: np.ndarray,
    eps: float = 1e-6,
    tolerance: float = 1e-6,
    max_elements: int | None = None,
    seed: int = 0,
    atol: float = 1e-8,
) -> GradcheckResult:
    """Gradient check of a layer or model (converted to float64 in place) and its input.

    Uses the loss ``sum(module(x) * R)`` with a fixed random ``R``. Train-mode layers with
    randomness (dropout) must be in ``eval()`` mode; BatchNorm's running statistics are
    restored afterwards.

    Returns:
        Errors keyed by parameter name (as in ``state_dict``) plus ``"input"``.
    """
    module.to(np.float64)
    x = np.array(x, dtype=np.float64, copy=True)
    saved = module.state_dict()
    rng = np.random.default_rng(seed)
    out = module.forward(x)
    projection = rng.standard_normal(out.shape)
    module.zero_grad()
    grad_x = module.backward(projection)
    params = dict(module.named_parameters())
    arrays = {name: p.data for name, p in params.items()}
    grads = {
        name: p.grad if p.grad is not None else np.zeros_like(p.data) for name, p in params.items()
    }
    arrays["input"], grads["input"] = x, grad_x if grad_x is not None else np.zeros_like(x)

    def loss() -> float:
        return float(np.sum(module.forward(x) * projection))

    try:
        return gradcheck(loss, arrays, grads, eps, tolerance, max_elements, rng, atol)
    finally:
        module.load_state_dict(saved)
