"""Training curves: training against validation accuracy and loss per epoch (the
overfitting article's picture).

:class:`PlotCurves` is the callback with which :func:`cnnlab.fit` draws a run's ``curves.png``
when training ends, or later if asked (``cnnlab train`` evaluates the test split and prints its
result line first, then :func:`draw_deferred_curves`). Drawing alongside the evaluation, in a
thread, made both slower on two cores: torch's two threads and matplotlib's one fought for
them (BENCHMARKS.md, issue 16). matplotlib is imported only when a picture is drawn, not when
this module is.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from cnnlab.errors import CheckpointError
from cnnlab.runs import HISTORY_JSON, read_run_config
from cnnlab.training.callbacks import Callback, TrainerView, chosen_epoch
from cnnlab.training.history import History

#: How far above its best the last validation loss must end for a rise to count as one.
RISE_TOLERANCE = 0.02


def best_epoch(history: History) -> int | None:
    """The epoch (1-based) of the lowest validation loss; None without validation."""
    val = history.history["val_loss"]
    finite = [i for i, v in enumerate(val) if not math.isnan(v)]
    if not finite:
        return None
    return history.epoch[min(finite, key=lambda i: val[i])]


def overfitting_epoch(history: History, tolerance: float = RISE_TOLERANCE) -> int | None:
    """The epoch after which the model overfits: validation loss rises while training loss
    keeps falling (the overfitting article's picture).

    That is the epoch ``b`` of the lowest validation loss when at least two epochs follow it,
    the last validation loss ends more than ``tolerance`` (relative) above the lowest, and the
    last training loss is below the training loss at ``b``.

    Returns:
        The 1-based epoch ``b``, or None (no validation, or no such rise).
    """
    best = best_epoch(history)
    if best is None:
        return None
    b = history.epoch.index(best)
    loss, val = history.history["loss"], history.history["val_loss"]
    if len(val) - b < 3 or math.isnan(val[-1]):
        return None
    rises = val[-1] > val[b] * (1 + tolerance)
    return best if rises and loss[-1] < loss[b] else None


def plot_history(
    history: History, path: str | Path, title: str = "", monitor: str = "val_loss"
) -> Path:
    """Two panels (accuracy, loss), training vs validation, the epoch whose weights
    ``best.safetensors`` holds marked (the best ``monitor``, as ``--monitor`` chose it) and
    overfitting called out (shaded, and in the title) when validation loss rises while training
    loss falls.

    Returns:
        The PNG written.
    """
    from cnnlab.viz._figure import new_figure, save_figure  # matplotlib: ~0.5 s to import

    figure = new_figure(11, 4.4)
    figure.set_layout_engine("constrained")  # room for a two-line title
    epochs = history.epoch
    h = history.history
    validated = best_epoch(history) is not None
    chosen = chosen_epoch(epochs, h.get(monitor, []), monitor)
    start = overfitting_epoch(history)
    for column, metric in enumerate(("accuracy", "loss")):
        axes = figure.add_subplot(1, 2, column + 1)
        axes.plot(epochs, h[metric], "o-", label=f"training {metric}")
        if validated:
            axes.plot(epochs, h[f"val_{metric}"], "s-", label=f"validation {metric}")
        if chosen is not None:
            i = epochs.index(chosen)
            curve = f"val_{metric}" if monitor.startswith("val_") else metric
            axes.axvline(chosen, color="grey", linestyle="--", linewidth=1)
            axes.plot(
                [chosen],
                [h[curve][i]],
                marker="*",
                markersize=14,
                color="goldenrod",
                linestyle="none",
                label=f"best checkpoint (--monitor {monitor}): epoch {chosen}, {h[monitor][i]:.4f}",
            )
        if start is not None:
            axes.axvspan(start, epochs[-1], color="firebrick", alpha=0.08, label="overfitting")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.set_title(f"Training and validation {metric}")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
        if len(epochs) < 15:
            axes.set_xticks(epochs)
    note = (
        f"\noverfitting after epoch {start}: validation loss rises while training loss falls"
        if start
        else ""
    )
    figure.suptitle((title or "Training curves") + note, color="firebrick" if start else "black")
    return save_figure(figure, path)


class PlotCurves(Callback):
    """Draw :func:`plot_history` of the run when training ends: after epoch ``epochs``, or
    after the epoch at which a callback stopped training (add it after those callbacks).

    Args:
        path: the PNG to write.
        epochs: the run's number of epochs.
        title: the figure's title.
        monitor: the metric that chose the best checkpoint (``--monitor``), marked.
        deferred: keep a copy of the history and draw it when :meth:`draw` (or
            :func:`draw_deferred_curves`) is called, not when training ends.
    """

    key = "plot_curves"

    def __init__(
        self,
        path: str | Path,
        epochs: int,
        title: str = "",
        monitor: str = "val_loss",
        deferred: bool = False,
    ) -> None:
        self.path = Path(path)
        self.epochs = epochs
        self.title = title
        self.monitor = monitor
        self.deferred = deferred
        self._pending: History | None = None

    def on_epoch_end(self, trainer: TrainerView, epoch: int, logs: dict[str, float]) -> None:
        if not (epoch >= self.epochs or trainer.stop_training):
            return
        if not self.deferred:
            plot_history(trainer.history, self.path, title=self.title, monitor=self.monitor)
            return
        self._pending = History.from_dict(trainer.history.to_dict())  # training may go on
        _DEFERRED.append(self)

    def draw(self) -> None:
        """Draw the deferred picture, if training ended since the last call."""
        history, self._pending = self._pending, None
        if self in _DEFERRED:
            _DEFERRED.remove(self)
        if history is not None:
            plot_history(history, self.path, title=self.title, monitor=self.monitor)


#: The deferred drawings not drawn yet.
_DEFERRED: list[PlotCurves] = []


def draw_deferred_curves() -> None:
    """Draw every deferred :class:`PlotCurves` picture; each is drawn (or fails) once."""
    for curves in list(_DEFERRED):
        curves.draw()


def plot_run(run: str | Path, output: str | Path = "curves.png") -> Path:
    """:func:`plot_history` of a run directory, titled with its model and data.

    Raises:
        CheckpointError: not a run directory, or a run without a readable history.
    """
    run = Path(run)
    if not run.is_dir():
        missing = "" if run.exists() else " (no such path)"
        raise CheckpointError(
            f"expected a run directory (with {HISTORY_JSON}), received {run}{missing}"
        )
    config = read_run_config(run)["config"]
    path = run / HISTORY_JSON
    try:
        history = History.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"expected a run with a readable {HISTORY_JSON}, received {run} ({exc})"
        ) from None
    if not history.epoch:
        raise CheckpointError(f"expected a run with at least one epoch, received {run}")
    title = f"{config.get('model')} on {config.get('data')}"
    return plot_history(history, output, title=title, monitor=config.get("monitor", "val_loss"))
