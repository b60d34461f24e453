"""Learning-rate (and momentum) schedules as pure functions of the step: plain Python math, no
NumPy, no torch, so the torch engine and the scratch engine share them.

A schedule is called with the 0-based step (optimizer updates done so far) and returns the
learning rate for the next update. :func:`apply_schedule` writes it (and, for one-cycle, the
momentum or Adam's beta1) into any optimizer with PyTorch-style ``param_groups``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class Schedule(Protocol):
    """``lr = schedule(step)``; ``momentum(step)`` is ``None`` when it does not cycle momentum."""

    def __call__(self, step: int) -> float: ...

    def momentum(self, step: int) -> float | None: ...


@dataclass(frozen=True)
class ConstantLR:
    """``lr`` at every step (not torch's ``ConstantLR``, which scales for a few steps)."""

    lr: float

    def __call__(self, step: int) -> float:
        return self.lr

    def momentum(self, step: int) -> float | None:
        return None


@dataclass(frozen=True)
class StepLR:
    """``torch.optim.lr_scheduler.StepLR``: ``base_lr * gamma ** (step // step_size)``."""

    base_lr: float
    step_size: int
    gamma: float = 0.1

    def __call__(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)

    def momentum(self, step: int) -> float | None:
        return None


@dataclass(frozen=True)
class MultiStepLR:
    """``torch.optim.lr_scheduler.MultiStepLR``: ``base_lr * gamma ** k``, ``k`` the number of
    ``milestones`` (steps, ascending) reached."""

    base_lr: float
    milestones: tuple[int, ...]
    gamma: float = 0.1

    def __call__(self, step: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, step)

    def momentum(self, step: int) -> float | None:
        return None


@dataclass(frozen=True)
class CosineAnnealingLR:
    """``torch.optim.lr_scheduler.CosineAnnealingLR`` in closed form:
    ``eta_min + (base_lr - eta_min) * (1 + cos(pi * step / T_max)) / 2``."""

    base_lr: float
    T_max: int
    eta_min: float = 0.0

    def __call__(self, step: int) -> float:
        return (
            self.eta_min
            + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2
        )

    def momentum(self, step: int) -> float | None:
        return None


def _anneal(start: float, end: float, pct: float, strategy: str) -> float:
    if strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
    return (end - start) * pct + start


@dataclass(frozen=True)
class OneCycleLR:
    """``torch.optim.lr_scheduler.OneCycleLR`` with its defaults: warm up from
    ``max_lr / div_factor`` to ``max_lr`` over ``pct_start`` of the steps, then anneal to
    ``initial_lr / final_div_factor``; momentum (or beta1) cycles the opposite way between
    ``max_momentum`` and ``base_momentum``. ``three_phase`` as PyTorch."""

    max_lr: float
    total_steps: int
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    cycle_momentum: bool = True
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False

    def __post_init__(self) -> None:
        if self.total_steps <= 0:
            raise ValueError(f"expected total_steps > 0, received total_steps={self.total_steps}")
        if not 0.0 <= self.pct_start <= 1.0:
            raise ValueError(f"expected pct_start in [0, 1], received pct_start={self.pct_start}")
        if self.anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"expected anneal_strategy 'cos' or 'linear', received {self.anneal_strategy!r}"
            )

    def _phases(self) -> list[tuple[float, float, float, float, float]]:
        """``(end_step, start_lr, end_lr, start_momentum, end_momentum)`` per phase."""
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        up = float(self.pct_start * self.total_steps) - 1
        lo_m, hi_m = self.base_momentum, self.max_momentum
        if self.three_phase:
            return [
                (up, initial, self.max_lr, hi_m, lo_m),
                (
                    float(2 * self.pct_start * self.total_steps) - 2,
                    self.max_lr,
                    initial,
                    lo_m,
                    hi_m,
                ),
                (self.total_steps - 1, initial, final, hi_m, hi_m),
            ]
        return [
            (up, initial, self.max_lr, hi_m, lo_m),
            (self.total_steps - 1, self.max_lr, final, lo_m, hi_m),
        ]

    def _at(self, step: int) -> tuple[float, float]:
        if step > self.total_steps:
            raise ValueError(
                f"expected step <= total_steps={self.total_steps}, received step={step}"
            )
        phases = self._phases()
        start_step = 0.0
        for i, (end_step, lr0, lr1, m0, m1) in enumerate(phases):
            if step <= end_step or i == len(phases) - 1:
                pct = (step - start_step) / (end_step - start_step)
                return (
                    _anneal(lr0, lr1, pct, self.anneal_strategy),
                    _anneal(m0, m1, pct, self.anneal_strategy),
                )
            start_step = end_step
        raise AssertionError("unreachable")

    def __call__(self, step: int) -> float:
        return self._at(step)[0]

    def momentum(self, step: int) -> float | None:
        return self._at(step)[1] if self.cycle_momentum else None


def apply_schedule(param_groups: Sequence[dict[str, Any]], schedule: Schedule, step: int) -> float:
    """Set every group's ``lr`` (and momentum / ``betas[0]`` if the schedule cycles it) for
    ``step``; works on scratch and torch optimizers alike. Returns the learning rate."""
    lr = schedule(step)
    momentum = schedule.momentum(step)
    for group in param_groups:
        group["lr"] = lr
        if momentum is not None:
            if "betas" in group:
                group["betas"] = (momentum, *tuple(group["betas"])[1:])
            elif "momentum" in group:
                group["momentum"] = momentum
    return lr
