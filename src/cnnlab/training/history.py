"""The per-epoch record of a run, in Keras's shape (``history.history["val_accuracy"]``), and
its CSV form (``history.csv``: one row per epoch, :data:`HISTORY_COLUMNS`)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.fileio import atomic_write_text

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
METRICS = HISTORY_COLUMNS[1:]  # loss, accuracy, val_loss, val_accuracy, lr, seconds


@dataclass
class History:
    """What :func:`cnnlab.fit` returns.

    Attributes:
        epoch: 1-based epoch numbers, one per row.
        history: ``{"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy":
            [...], "lr": [...], "seconds": [...]}``; validation entries are NaN without a
            validation split; ``lr`` is the learning rate at the end of the epoch.
    """

    epoch: list[int] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in METRICS})

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for metric in METRICS:
            self.history[metric].append(float(logs[metric]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (NaN becomes None)."""
        return {
            "epoch": list(self.epoch),
            "history": {
                k: [None if math.isnan(v) else v for v in vs] for k, vs in self.history.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        history = {
            k: [math.nan if v is None else float(v) for v in data["history"][k]] for k in METRICS
        }
        return cls(epoch=[int(e) for e in data["epoch"]], history=history)

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(no epochs)"
        last = {k: v[-1] for k, v in self.history.items()}
        return (
            f"History({len(self.epoch)} epochs; last: loss={last['loss']:.4f} "
            f"accuracy={last['accuracy']:.4f} val_loss={last['val_loss']:.4f} "
            f"val_accuracy={last['val_accuracy']:.4f})"
        )


def write_history_csv(path: Path, history: dict[str, list[float]], epochs: list[int]) -> None:
    """Write a Keras-style history dict as CSV with :data:`HISTORY_COLUMNS` (atomically; NaN
    and None as empty cells)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for row, epoch in enumerate(epochs):
        writer.writerow([epoch, *(_cell(history[c][row]) for c in HISTORY_COLUMNS[1:])])
    atomic_write_text(path, buffer.getvalue())


def _cell(value: float) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(value)
