"""Training curves: training against validation accuracy and loss per epoch."""

from __future__ import annotations

import math
from pathlib import Path

from cnnlab.training.history import History
from cnnlab.viz._figure import new_figure, save_figure


def overfitting_epoch(history: History) -> int | None:
    """First epoch after which validation loss rose twice in a row while training loss fell.

    Returns:
        The 1-based epoch where the validation loss was lowest before that rise, or None.
    """
    loss, val = history.history["loss"], history.history["val_loss"]
    for i in range(2, len(val)):
        if any(math.isnan(v) for v in val[i - 2 : i + 1]):
            continue
        if val[i] > val[i - 1] > val[i - 2] and loss[i] < loss[i - 1] < loss[i - 2]:
            return history.epoch[i - 2]
    return None


def plot_history(history: History, path: str | Path, title: str = "") -> Path:
    """Two panels (accuracy, loss), training vs validation, best validation loss marked and
    overfitting called out when validation loss rises while training loss falls."""
    figure = new_figure(11, 4.2)
    epochs = history.epoch
    h = history.history
    has_val = any(not math.isnan(v) for v in h["val_loss"])
    best = None
    if has_val:
        best_index = min(range(len(epochs)), key=lambda i: h["val_loss"][i])
        best = epochs[best_index]
    for column, (metric, label) in enumerate((("accuracy", "Accuracy"), ("loss", "Loss"))):
        axes = figure.add_subplot(1, 2, column + 1)
        axes.plot(epochs, h[metric], "o-", label=f"training {metric}")
        if has_val:
            axes.plot(epochs, h[f"val_{metric}"], "s-", label=f"validation {metric}")
            axes.axvline(
                best,
                color="grey",
                linestyle="--",
                linewidth=1,
                label=f"best val_loss (epoch {best})",
            )
        axes.set_xlabel("epoch")
        axes.set_ylabel(label.lower())
        axes.set_title(f"Training and validation {label.lower()}")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
        if len(epochs) < 15:
            axes.set_xticks(epochs)
    start = overfitting_epoch(history) if has_val else None
    note = f" — overfitting after epoch {start}: val_loss rises while loss falls" if start else ""
    figure.suptitle((title or "Training curves") + note, color="firebrick" if start else "black")
    return save_figure(figure, path)
