"""Evaluating a trained run on a dataset split: loss, top-k, per-class metrics, confusion."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.data.dataset import ImageSplit
from cnnlab.documents import field_values
from cnnlab.errors import ConfigError
from cnnlab.evaluation.inputs import DataSelection, select_split
from cnnlab.evaluation.metrics import (
    confusion_matrix,
    precision_recall_f1,
    top_k_accuracy,
    worst_mistakes,
)
from cnnlab.evaluation.tta import (
    TTAWarning,
    crop_size_for,
    label_warning,
    tta_log_probabilities,
    tta_views,
)
from cnnlab.export.runtime import is_onnx_path, load_onnx_run
from cnnlab.inference import compute_logits
from cnnlab.runs import Run, as_run
from cnnlab.training.distributed import current


@dataclass
class EvaluationReport:
    """What :func:`evaluate` returns; ``to_dict()`` is ``cnnlab evaluate --json``."""

    checkpoint: str
    data: str
    split: str
    examples: int
    loss: float
    accuracy: float
    top_k: dict[int, float]
    classes: tuple[str, ...]
    per_class: list[dict[str, Any]]
    confusion_matrix: list[list[int]] = field(repr=False)
    mistakes: list[dict[str, Any]] = field(default_factory=list, repr=False)
    tta: dict[str, Any] | None = None  # mode, views, crop_size, single-view accuracy and loss
    #: the classes evaluated on, when a selection kept fewer than the run's (None: all); the
    #: per-class rows are theirs, the confusion matrix stays the run's (all its classes)
    selected_classes: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **field_values(self),
            "top_k": {str(k): v for k, v in self.top_k.items()},
            "classes": list(self.classes),
            "selected_classes": None
            if self.selected_classes is None
            else list(self.selected_classes),
        }

    def render(self) -> str:
        """A human-readable report: headline numbers, per-class table, confusion matrix."""
        lines = [
            f"{self.data} {self.split} split, {self.examples} examples, "
            f"checkpoint {self.checkpoint}",
            f"loss {self.loss:.4f}   accuracy {self.accuracy:.4%}   "
            + "   ".join(f"top-{k} {v:.4%}" for k, v in self.top_k.items()),
            *self._render_tta(),
            "",
            f"{'class':>12} {'precision':>10} {'recall':>10} {'f1':>10} {'support':>8}",
        ]
        for row in self.per_class:
            lines.append(
                f"{row['class']:>12} {row['precision']:>10.4f} {row['recall']:>10.4f} "
                f"{row['f1']:>10.4f} {row['support']:>8d}"
            )
        lines += ["", *self._render_confusion()]
        if self.mistakes:
            where = "the whole split" if self.selected_classes else "the split"
            lines += [
                "",
                f"{len(self.mistakes)} misclassified examples with the highest loss "
                f"(index: position in {where})",
            ]
            lines.append(f"{'index':>7} {'true':>8} {'predicted':>10} {'loss':>8} {'p(pred)':>8}")
            for m in self.mistakes:
                lines.append(
                    f"{m['index']:>7d} {m['true']:>8} {m['predicted']:>10} {m['loss']:>8.3f} "
                    f"{m['probability']:>8.3f}"
                )
        return "\n".join(lines)

    def _render_confusion(self) -> list[str]:
        """The confusion matrix; with a class selection, its rows and columns, and a column
        ``other`` for predictions of the run's other classes."""
        rows = list(self.selected_classes or self.classes)
        index = [self.classes.index(c) for c in rows]
        other = self.selected_classes is not None
        width = max(6, *(len(c) for c in rows)) + 1
        header = " " * width + "".join(f"{c:>{width}}" for c in rows)
        lines = [
            "confusion matrix (rows: true class, columns: predicted)",
            header + (f"{'other':>{width}}" if other else ""),
        ]
        for name, i in zip(rows, index):
            full = self.confusion_matrix[i]
            shown = [full[j] for j in index]
            extra = f"{sum(full) - sum(shown):>{width}d}" if other else ""
            lines.append(f"{name:>{width}}" + "".join(f"{v:>{width}d}" for v in shown) + extra)
        return lines

    def _render_tta(self) -> list[str]:
        if not self.tta:
            return []
        t = self.tta
        return [
            f"single view: accuracy {t['single_view']['accuracy']:.4%}  loss "
            f"{t['single_view']['loss']:.4f}   |   {t['mode']} TTA ({t['views']} views): "
            f"accuracy {self.accuracy:.4%}  loss {self.loss:.4f}   (the numbers above are TTA's)"
        ]


def evaluate(
    run: str | Path | Run,
    *,
    selection: DataSelection | None = None,
    top_k: int = 5,
    batch_size: int | None = None,
    tta: str = "none",
    crop_size: int | None = None,
    mistakes: int = 10,
    cache_dir: str | Path | None = None,
    model: nn.Module | None = None,
) -> EvaluationReport:
    """Evaluate a run (directory, checkpoint file or loaded :class:`Run`) on a split.

    Args:
        selection: the data, split and classes (:class:`DataSelection`); default the run's
            own data, test split, with its class selection.
        top_k: report top-1 and top-k accuracy (top-k left out when k is at least the number
            of classes: it would always be 100%).
        tta: test-time augmentation (:mod:`cnnlab.evaluation.tta`); with one, the report's
            metrics are the TTA ones and ``report.tta`` holds the single-view accuracy and loss.
        crop_size: crop size of ``5crop``/``10crop`` (default: the network input).
        mistakes: how many of the worst misclassified examples to list.
        cache_dir: dataset cache (default ``~/.cache/cnnlab``).
        model: a module built like the trained one, to load a run trained on a module passed
            to :func:`cnnlab.fit` (see :func:`cnnlab.load_run`).

    Raises:
        ConfigError: a bad top_k, TTA mode or crop size.
        DataError: the data's classes differ from the run's.
    """
    _check_top_k(top_k)
    if is_onnx_path(run):  # an exported graph, run by onnxruntime (cnnlab.export)
        run = load_onnx_run(run, tta=tta, require_metadata=True)
    run = as_run(run, model=model)
    selection = selection or DataSelection()
    _crop_for(run, tta, crop_size)  # checks before loading any data
    chosen = select_split(run, selection, cache_dir)
    return evaluate_split(
        run,
        chosen.dataset,
        positions=chosen.positions,
        selected_classes=chosen.classes,
        data=chosen.spec,
        split=selection.split,
        top_k=top_k,
        batch_size=batch_size,
        tta=tta,
        crop_size=crop_size,
        mistakes=mistakes,
    )


def _check_top_k(top_k: int) -> None:
    if top_k < 1:
        raise ConfigError(f"expected top_k >= 1, received top_k={top_k}")


def _crop_for(run: Run, tta: str, crop_size: int | None) -> tuple[int, int] | None:
    """The crop size of a crop mode (None otherwise), checked against the run's input."""
    shape = getattr(run.model, "default_input_shape", run.meta.input_shape)  # a user's: the run's
    network_input = tuple(shape[1:])
    return crop_size_for(tta, run.preprocessing, network_input, crop_size)


def evaluate_split(
    run: Run,
    dataset: ImageSplit,
    *,
    data: str,
    split: str,
    top_k: int = 5,
    batch_size: int | None = None,
    tta: str = "none",
    crop_size: int | None = None,
    mistakes: int = 10,
    positions: torch.Tensor | None = None,
    selected_classes: tuple[str, ...] | None = None,
) -> EvaluationReport:
    """:func:`evaluate` on a split already loaded (:func:`select_split`), so that a caller who
    also needs the images (the HTML report's gallery) loads them once.

    Args:
        data, split: how the report names the data and the split.
        positions: each example's index in the whole split (a class selection's), so that
            the mistakes name the examples as the split numbers them.
        selected_classes: the classes a selection kept (the per-class rows shown).

    Shape:
        ``dataset``: N uint8 images ``(N, C, H, W)`` with labels in the run's classes.

    Raises:
        ConfigError: a bad top_k, TTA mode or crop size.
    """
    _check_top_k(top_k)
    crop = _crop_for(run, tta, crop_size)
    labels = dataset.labels
    shared = current()  # under torchrun each process computes a part; all get every row
    if tta == "none":
        single = shared.gather_rows(
            dataset, lambda part: compute_logits(run.model, part, run.preprocessing, batch_size)
        ).log_softmax(1)
        log_probs, tta_info = single, None
    else:
        reason = label_warning(tta, run.classes, run.preprocessing.channels)
        if reason is not None:
            warnings.warn(reason, TTAWarning, stacklevel=2)
        views = tta_views(tta, run.preprocessing, crop)
        single, log_probs = shared.gather_rows(
            dataset,
            lambda part: tta_log_probabilities(
                run.model, part, run.preprocessing, views, batch_size
            ),
        )
        tta_info = {
            "mode": tta,
            "views": len(views),
            "crop_size": list(crop) if crop is not None else None,
            "single_view": {
                "accuracy": (single.argmax(1) == labels).double().mean().item(),
                "loss": F.nll_loss(single, labels).item(),
            },
            "accuracy": (log_probs.argmax(1) == labels).double().mean().item(),
            "loss": F.nll_loss(log_probs, labels).item(),
        }
    predicted = log_probs.argmax(1)
    matrix = confusion_matrix(predicted, labels, len(run.classes))
    stats = precision_recall_f1(matrix)
    ks = sorted({1} | ({top_k} if top_k < len(run.classes) else set()))  # top-all: always 100%
    per_class = [
        {
            "class": name,
            "precision": stats["precision"][i].item(),
            "recall": stats["recall"][i].item(),
            "f1": stats["f1"][i].item(),
            "support": int(stats["support"][i]),
        }
        for i, name in enumerate(run.classes)
        if selected_classes is None or name in selected_classes
    ]
    worst = worst_mistakes(log_probs, labels, run.classes, mistakes)
    if positions is not None:  # positions in the whole split
        worst = [{**m, "index": int(positions[m["index"]])} for m in worst]
    return EvaluationReport(
        checkpoint=str(run.checkpoint),
        data=data,
        split=split,
        examples=len(dataset),
        loss=F.nll_loss(log_probs, labels).item(),
        accuracy=(predicted == labels).double().mean().item(),
        top_k={k: top_k_accuracy(log_probs, labels, k) for k in ks},
        classes=run.classes,
        per_class=per_class,
        confusion_matrix=matrix.tolist(),
        mistakes=worst,
        tta=tta_info,
        selected_classes=selected_classes,
    )
