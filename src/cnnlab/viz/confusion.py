"""The confusion matrix of an evaluation as a labelled heat map (the evaluation is the
caller's: this module draws a result, it never evaluates)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnlab.viz._figure import new_figure, save_figure

if TYPE_CHECKING:
    from cnnlab.evaluation.evaluate import EvaluationReport


def confusion_rates(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its total: the share of each true class given each prediction
    (the diagonal is the per-class recall); rows of absent classes stay 0.

    Shape:
        ``(K, K)`` counts -> ``(K, K)`` float64 in 0..1.
    """
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)


def plot_confusion(
    report: EvaluationReport,
    output: str | Path = "confusion.png",
    *,
    normalize: bool = False,
) -> Path:
    """Draw an evaluation's confusion matrix (rows: true class, columns: predicted) with class
    names, a colour bar and the count (or, with ``normalize``, the row share) in each cell.

    Args:
        report: what :func:`cnnlab.evaluate` returns (its matrix, classes, data, split,
            accuracy and number of examples are drawn).
        normalize: colour and label each cell by its share of the true class's images.

    Returns:
        The PNG written.
    """
    counts = np.asarray(report.confusion_matrix, dtype=np.int64)
    values = confusion_rates(counts) if normalize else counts.astype(float)
    k = len(report.classes)
    side = min(16.0, max(5.0, 0.55 * k + 2.5))
    figure = new_figure(side + 1.2, side)
    axes = figure.add_subplot(1, 1, 1)
    top = values.max() if values.size and values.max() > 0 else 1.0
    image = axes.imshow(values, cmap="Blues", vmin=0, vmax=top)
    figure.colorbar(
        image,
        ax=axes,
        fraction=0.046,
        pad=0.04,
        label="share of the true class" if normalize else "images",
    )
    ticks = np.arange(k)
    axes.set_xticks(ticks, report.classes, rotation=45 if max(map(len, report.classes)) > 2 else 0)
    axes.set_yticks(ticks, report.classes)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if k <= 30:
        size = 9 if k <= 12 else 7
        for i in range(k):
            for j in range(k):
                text = f"{values[i, j]:.2f}" if normalize else f"{counts[i, j]:d}"
                if normalize and counts[i, j] == 0:
                    text = "0"
                dark = values[i, j] > 0.6 * top
                axes.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="white" if dark else "black",
                )
    axes.set_title(
        f"Confusion matrix, {report.data} {report.split} split: accuracy {report.accuracy:.2%} "
        f"on {report.examples} images\n(rows: true class, columns: predicted"
        f"{'; each row sums to 1' if normalize else ''})",
        fontsize=10,
    )
    return save_figure(figure, output)
