"""Callbacks: save the best model, stop early, log to CSV.

Each callback has a ``state_dict``/``load_state_dict`` pair; the trainer stores their states in
every resumable checkpoint, so a resumed run makes exactly the decisions an uninterrupted one
would (which epoch was best, how long patience has run).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.fileio import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from cnnlab.training.loop import Trainer

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")


class Callback:
    """Base class; override what you need."""

    key = "callback"

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
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

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
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

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
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

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        write_history_csv(self.path, trainer.history.history, trainer.history.epoch)


def write_history_csv(path: Path, history: dict[str, list[float]], epochs: list[int]) -> None:
    """Write a Keras-style history dict as CSV with :data:`HISTORY_COLUMNS`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for row, epoch in enumerate(epochs):
        writer.writerow([epoch, *(_cell(history[c][row]) for c in HISTORY_COLUMNS[1:])])
    atomic_write_text(path, buffer.getvalue())


def _cell(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(value)


class JSONLogger(Callback):
    """Keep ``history.json`` (``{"epoch": [...], "history": {...}}``) in step with the history."""

    key = "json_logger"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        atomic_write_json(self.path, trainer.history.to_dict())
