"""Fixtures of the scratch-engine tests: ``check``, tolerances and a torch autograd reference.

(Tests import nothing from here: pytest runs with ``--import-mode=importlib``, so shared
helpers are handed out as the ``check`` fixture.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import pytest
import torch

from cnnlab.scratch.functional.layout import to_batch_first, to_batch_last


class Check:
    """Comparison helpers. Relative tolerance per dtype, as issue 6 asks."""

    tolerance: ClassVar[dict[np.dtype, float]] = {
        np.dtype(np.float64): 1e-10,
        np.dtype(np.float32): 1e-4,
    }

    def close(self, actual: np.ndarray, expected: np.ndarray, dtype: type, what: str = "") -> None:
        """``max|a - e| <= tol * max(max|e|, 1e-3)``, with matching shapes."""
        actual, expected = np.asarray(actual), np.asarray(expected)
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
        scale = max(float(np.abs(expected).max(initial=0.0)), 1e-3)
        diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        err = float(diff.max(initial=0.0)) / scale
        tol = self.tolerance[np.dtype(dtype)]
        assert err <= tol, f"{what}: relative error {err:.3e} > {tol:.0e}"

    @staticmethod
    def layout(x: np.ndarray, batch_last: bool) -> np.ndarray:
        """``x`` (batch-first, as torch) in the layout an op under test reads."""
        return to_batch_last(x) if batch_last else x

    @staticmethod
    def unlayout(x: np.ndarray, batch_last: bool) -> np.ndarray:
        """An op's ``x``-layout result back in torch's batch-first layout."""
        return to_batch_first(x) if batch_last else x

    @staticmethod
    def torch_reference(
        fn: Callable[..., torch.Tensor], inputs: Sequence[np.ndarray | None], seed: int = 1
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None]]:
        """Run ``fn`` on tensors made from ``inputs`` (``None`` passes through), backpropagate
        a random upstream gradient; return ``(output, grad_out, [grad of each input])``."""
        tensors = [None if a is None else torch.tensor(a, requires_grad=True) for a in inputs]
        out = fn(*tensors)
        first = next(a for a in inputs if a is not None)
        grad_out = np.random.default_rng(seed).standard_normal(out.shape).astype(first.dtype)
        out.backward(torch.from_numpy(grad_out))
        grads = [None if t is None or t.grad is None else t.grad.numpy() for t in tensors]
        return out.detach().numpy(), grad_out, grads


@pytest.fixture(scope="session")
def check() -> Check:
    return Check()


@pytest.fixture(params=[False, True], ids=["nchw", "chwn"])
def batch_last(request: pytest.FixtureRequest) -> bool:
    """Runs a test in both layouts an op reads: batch-first (torch's) and the graph executor's
    batch-last ``(C, H, W, N)``."""
    return request.param
