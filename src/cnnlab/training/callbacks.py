"""Callbacks: save the best model, stop early, log to CSV and JSON.

Each callback has a ``state_dict``/``load_state_dict`` pair; the trainer stores their states in
every resumable checkpoint, so a resumed run makes exactly the decisions an uninterrupted one
would (which epoch was best, how long patience has run).

Callbacks see the trainer through :class:`TrainerView`, the little they use of it, so this
module does not depend on the training loop.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

from cnnlab.fileio import atomic_write_json
from cnnlab.training.history import History, write_history_csv


class TrainerView(Protocol):
    """What a callback may use of the :class:`~cnnlab.training.loop.Trainer` calling it.

    Attributes:
        history: the run's history, this epoch included.
        stop_training: set to True to end training after this epoch.
    """

    history: History
    stop_training: bool

    def save_weights(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        """Write a weights-only checkpoint of the current model (``extra``: more metadata)."""


class Callback:
    """Base class; override what you need."""

    key = "callback"

    def on_epoch_end(self, trainer: TrainerView, epoch: int, logs: dict[str, float]) -> None:
        """Called after each epoch with that epoch's metrics."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


def _improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def _mode_of(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def chosen_epoch(epochs: list[int], values: list[float], monitor: str) -> int | None:
    """The epoch :class:`SaveBest` keeps for ``monitor``: the first with the lowest loss or
    the highest accuracy among the finite values (None: none is finite)."""
    mode, best, chosen = _mode_of(monitor), None, None
    for epoch, value in zip(epochs, values):
        if _improved(value, best, mode):
            best, chosen = value, epoch
    return chosen


class SaveBest(Callback):
    """Write ``best.safetensors`` whenever the monitored metric improves.

    Args:
        path: where the best weights go.
        monitor: a history column, e.g. ``"val_accuracy"`` (higher is better) or
            ``"val_loss"`` (lower is better).
    """

    key = "save_best"

    def __init__(self, path: str | Path, monitor: str = "val_accuracy") -> None:
        self.path = Path(path)
        self.monitor = monitor
        self.mode = _mode_of(monitor)
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_epoch_end(self, trainer: TrainerView, epoch: int, logs: dict[str, float]) -> None:
        value = logs[self.monitor]
        if _improved(value, self.best, self.mode):
            self.best, self.best_epoch = value, epoch
            trainer.save_weights(self.path, extra={"epoch": epoch, self.monitor: value})

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]


class EarlyStopping(Callback):
    """Stop when the monitored metric has not improved for ``patience`` epochs."""

    key = "early_stopping"

    def __init__(
        self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0
    ) -> None:
        self.monitor = monitor
        self.mode = _mode_of(monitor)
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, trainer: TrainerView, epoch: int, logs: dict[str, float]) -> None:
        value = logs[self.monitor]
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait, self.stopped_epoch = (
            state["best"],
            state["wait"],
            state["stopped_epoch"],
        )


class CSVLogger(Callback):
    """Keep ``history.csv`` in step with the history, one row per epoch.

    The file is rewritten atomically from the full history each epoch, so after a resume it
    holds exactly the rows of the resumed history (no duplicated or torn rows).
    """

    key = "csv_logger"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, trainer: TrainerView, epoch: int, logs: dict[str, float]) -> None:
        write_history_csv(self.path, trainer.history.history, trainer.history.epoch)


class JSONLogger(Callback):
    """Keep ``history.json`` (``{"epoch": [...], "history": {...}}``) in step with the history."""

    key = "json_logger"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, trainer: TrainerView, epoch: int, logs: dict[str, float]) -> None:
        atomic_write_json(self.path, trainer.history.to_dict())
