"""Divergence: when training has gone wrong beyond repair, and what the user can do.

Three signs stop training (:class:`DivergedError`, one line):

- a non-finite loss (NaN, inf), checked every step;
- non-finite weights or buffers, checked before every checkpoint is written, so a saved
  checkpoint never holds them;
- a loss that explodes while staying finite: cross-entropy of a classifier that guesses
  uniformly among ``C`` classes is ``ln C`` (about where every run starts), so a run whose
  typical loss is :data:`FACTOR` times that has left any useful region. "Typical" is the lower
  median of the last :data:`WINDOW` step losses (fewer at the start), so a few spikes of a
  healthy run never stop it, while a run that stays exploded (Adam at ``--lr 1e6`` reaches
  6.6e29) stops within about ``WINDOW / 2`` steps, before it writes another checkpoint.

A run folder that diverged gets :data:`DIVERGED_FILE`; ``--resume RUN --lr X`` (a lower rate)
is then accepted as a rescue, from the last checkpoint (all of which were written before the
loss left the bound) or from the start when there is none.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import TrainingError
from cnnlab.fileio import atomic_write_json

DIVERGED_FILE = "diverged.json"
WINDOW = 20
FACTOR = 20.0
SANE_LR = 0.01  # TrainConfig's default rate, sound for every optimizer here


class DivergedError(TrainingError):
    """Training stopped because the loss or the weights diverged.

    Attributes:
        record: what :data:`DIVERGED_FILE` records (epoch, step, loss, lr).
    """

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


def loss_bound(num_classes: int) -> float:
    """The largest typical loss of a run that has not diverged: ``FACTOR * ln(C)``."""
    return FACTOR * math.log(max(num_classes, 2))


class LossWatch:
    """The recent step losses of a run and the divergence test on them.

    Args:
        num_classes: the classifier's classes (sets :func:`loss_bound`).
    """

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.bound = loss_bound(num_classes)
        self.recent: deque[float] = deque(maxlen=WINDOW)

    def add(self, loss: float) -> None:
        self.recent.append(loss)

    @property
    def typical(self) -> float:
        """The lower median of the recent losses (0 before the first step)."""
        return statistics.median_low(self.recent) if self.recent else 0.0

    @property
    def exploded(self) -> bool:
        return self.typical > self.bound

    def describe(self) -> str:
        return (
            f"a typical loss below {self.bound:.3g} ({FACTOR:g} x ln {self.num_classes} "
            f"classes), received a median loss of {self.typical:.3g} over the last "
            f"{len(self.recent)} steps"
        )

    def state_dict(self) -> dict[str, Any]:
        return {"recent": list(self.recent)}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        self.recent = deque((float(v) for v in (state or {}).get("recent", [])), maxlen=WINDOW)


def first_non_finite(state: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor of ``state`` holding NaN or inf."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def _lower(lr: float) -> str:
    """A rate to try instead of ``lr``: a tenth of it, and no more than the default 0.01."""
    return f"{min(lr / 10, SANE_LR):.3g}"


def where_to_go_on(
    run_dir: Path | None, checkpoint: Path | None, lr: float, saved: str = ""
) -> str:
    """What the user can do after a divergence, naming only files that exist (``saved``:
    where the checkpoint was written, e.g. ``epoch 2 step 40``)."""
    lower = _lower(lr)
    if run_dir is None:
        return f"train again with a lower lr (now {lr:.3g}, e.g. {lower})"
    rescue = f"cnnlab train --resume {run_dir} --lr {lower}"
    if checkpoint is not None and checkpoint.is_file():
        when = f" ({saved})" if saved else ""
        return (
            f"the last good checkpoint is {checkpoint}{when}; continue from it with a lower "
            f"--lr (now {lr:.3g}): {rescue}"
        )
    return (
        f"no checkpoint was written, so start over with a lower --lr (now {lr:.3g}): {rescue} "
        "restarts the run from the beginning"
    )


def mark_diverged(run_dir: Path, record: dict[str, Any]) -> None:
    """Record in the run folder that it diverged (``--resume --lr`` may then rescue it)."""
    atomic_write_json(run_dir / DIVERGED_FILE, record)


def has_diverged(run_dir: Path) -> bool:
    return (run_dir / DIVERGED_FILE).is_file()


def clear_diverged(run_dir: Path) -> None:
    (run_dir / DIVERGED_FILE).unlink(missing_ok=True)
