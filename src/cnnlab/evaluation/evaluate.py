"""Evaluating a trained run on a dataset split: loss, top-k, per-class metrics, confusion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from cnnlab.data.dataset import ImageSplit
from cnnlab.data.datasets import load_dataset
from cnnlab.data.selection import keep_classes, parse_classes
from cnnlab.errors import ConfigError, DataError
from cnnlab.evaluation.metrics import (
    confusion_matrix,
    precision_recall_f1,
    top_k_accuracy,
    worst_mistakes,
)
from cnnlab.evaluation.tta import crop_size_for, tta_log_probabilities, tta_views
from cnnlab.export.runtime import is_onnx_path, load_onnx_run
from cnnlab.inference import compute_logits
from cnnlab.training.run import Run, load_run


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "data": self.data,
            "split": self.split,
            "examples": self.examples,
            "loss": self.loss,
            "accuracy": self.accuracy,
            "top_k": {str(k): v for k, v in self.top_k.items()},
            "classes": list(self.classes),
            "per_class": self.per_class,
            "confusion_matrix": self.confusion_matrix,
            "mistakes": self.mistakes,
            "tta": self.tta,
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
        width = max(5, *(len(c) for c in self.classes)) + 1
        lines += [
            "",
            "confusion matrix (rows: true class, columns: predicted)",
            " " * width + "".join(f"{c:>{width}}" for c in self.classes),
        ]
        for name, row in zip(self.classes, self.confusion_matrix):
            lines.append(f"{name:>{width}}" + "".join(f"{v:>{width}d}" for v in row))
        if self.mistakes:
            lines += ["", f"{len(self.mistakes)} misclassified examples with the highest loss"]
            lines.append(f"{'index':>7} {'true':>8} {'predicted':>10} {'loss':>8} {'p(pred)':>8}")
            for m in self.mistakes:
                lines.append(
                    f"{m['index']:>7d} {m['true']:>8} {m['predicted']:>10} {m['loss']:>8.3f} "
                    f"{m['probability']:>8.3f}"
                )
        return "\n".join(lines)

    def _render_tta(self) -> list[str]:
        if not self.tta:
            return []
        t = self.tta
        return [
            f"single view: accuracy {t['single_view']['accuracy']:.4%}  loss "
            f"{t['single_view']['loss']:.4f}   |   {t['mode']} TTA ({t['views']} views): "
            f"accuracy {self.accuracy:.4%}  loss {self.loss:.4f}   (the numbers above are TTA's)"
        ]


def load_split(
    run: Run,
    data: str | None = None,
    split: str = "test",
    cache_dir: str | Path | None = None,
    classes: str | Sequence[str] | None = None,
    stream: bool | None = None,
    workers: int | None = None,
) -> tuple[str, ImageSplit]:
    """The split a run is evaluated on: its own data by default, with the run's class selection
    (``--classes``) applied, or ``classes`` when given (for a run of all the data's classes,
    only the examples of ``classes`` are kept, labels and confusion matrix stay the run's).
    An image folder is converted as the run's was and streamed if the run's was, or as
    ``stream`` says; ``workers`` decoding processes (default ``min(4, cores)``).

    Returns:
        ``(data spec, dataset)``.

    Raises:
        ConfigError: a split other than test/train, or classes not in the data.
        DataError: the data's classes (after selection) differ from the run's.
    """
    if split not in ("test", "train"):
        raise ConfigError(f"expected split test or train, received split={split!r}")
    spec = data or run.data
    options = run.data_options_for(spec)
    if stream is not None:
        options["stream"] = stream
    splits = load_dataset(spec, cache_dir, workers=workers, **options)
    classes = parse_classes(classes)  # "0,1" or a list of names
    if classes is None and "selection" in run.meta:
        classes = run.classes  # the run was trained on a selection: test on its classes
    dataset = splits.test if split == "test" else splits.train
    if classes is not None:
        kept = keep_classes(dataset, list(classes))  # checks the names
        if tuple(dataset.classes) == tuple(run.classes):  # a run of all classes: keep its
            wanted = torch.tensor([dataset.classes.index(c) for c in kept.classes])  # labels
            kept = dataset.subset(torch.isin(dataset.labels, wanted).nonzero().flatten())
        dataset = kept
    if tuple(dataset.classes) != tuple(run.classes):
        raise DataError(
            f"expected data with the run's classes {list(run.classes)}, received {spec} with "
            f"classes {list(dataset.classes)}"
        )
    return spec, dataset


def evaluate(
    run: str | Path | Run,
    data: str | None = None,
    split: str = "test",
    top_k: int = 5,
    batch_size: int = 1000,
    cache_dir: str | Path | None = None,
    tta: str = "none",
    crop_size: int | None = None,
    mistakes: int = 10,
    classes: str | Sequence[str] | None = None,
    stream: bool | None = None,
    workers: int | None = None,
) -> EvaluationReport:
    """Evaluate a run (directory, checkpoint file or loaded :class:`Run`) on a split.

    Args:
        data: dataset spec; default the one the run was trained on.
        split: ``"test"`` (default) or ``"train"``.
        top_k: report top-1 .. top-k accuracies for k in {1, top_k} (capped at the classes).
        tta: test-time augmentation (:mod:`cnnlab.evaluation.tta`); with one, the report's
            metrics are the TTA ones and ``report.tta`` holds the single-view accuracy and loss.
        crop_size: crop size of ``5crop``/``10crop`` (default: the network input).
        mistakes: how many of the worst misclassified examples to list.
        classes: evaluate on these classes only (default: the run's selection, if any).
        stream: image folders: True streams the split from its files, False holds it in
            memory; default as the run's data was (streamed if it was, else if too large).
        workers: image folders: decoding processes (default ``min(4, cores)``).

    Raises:
        ConfigError: a bad split, top_k, TTA mode or crop size.
        DataError: the data's classes differ from the run's.
    """
    if top_k < 1:
        raise ConfigError(f"expected top_k >= 1, received top_k={top_k}")
    if is_onnx_path(run):  # an exported graph, run by onnxruntime (cnnlab.export)
        run = load_onnx_run(run, tta=tta, require_metadata=True)
    run = run if isinstance(run, Run) else load_run(run)
    network_input = tuple(run.model.default_input_shape[1:])
    crop = crop_size_for(tta, run.preprocessing, network_input, crop_size)  # checks before work
    spec, dataset = load_split(run, data, split, cache_dir, classes, stream, workers)
    labels = dataset.labels
    if tta == "none":
        single = compute_logits(run.model, dataset, run.preprocessing, batch_size).log_softmax(1)
        log_probs, tta_info = single, None
    else:
        views = tta_views(tta, run.preprocessing, crop)
        single, log_probs = tta_log_probabilities(
            run.model, dataset, run.preprocessing, views, batch_size
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
    ks = sorted({1, min(top_k, len(run.classes))})
    per_class = [
        {
            "class": name,
            "precision": stats["precision"][i].item(),
            "recall": stats["recall"][i].item(),
            "f1": stats["f1"][i].item(),
            "support": int(stats["support"][i]),
        }
        for i, name in enumerate(run.classes)
    ]
    return EvaluationReport(
        checkpoint=str(run.checkpoint),
        data=spec,
        split=split,
        examples=len(dataset),
        loss=F.nll_loss(log_probs, labels).item(),
        accuracy=(predicted == labels).double().mean().item(),
        top_k={k: top_k_accuracy(log_probs, labels, k) for k in ks},
        classes=run.classes,
        per_class=per_class,
        confusion_matrix=matrix.tolist(),
        mistakes=worst_mistakes(log_probs, labels, run.classes, mistakes),
        tta=tta_info,
    )
