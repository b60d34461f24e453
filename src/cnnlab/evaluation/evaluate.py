"""Evaluating a trained run on a dataset split: loss, top-k, per-class metrics, confusion."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch.nn.functional as F

from cnnlab.data.datasets import load_dataset
from cnnlab.errors import ConfigError, DataError
from cnnlab.evaluation.metrics import confusion_matrix, precision_recall_f1, top_k_accuracy
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
        }

    def render(self) -> str:
        """A human-readable report: headline numbers, per-class table, confusion matrix."""
        lines = [
            f"{self.data} {self.split} split, {self.examples} examples, "
            f"checkpoint {self.checkpoint}",
            f"loss {self.loss:.4f}   accuracy {self.accuracy:.4%}   "
            + "   ".join(f"top-{k} {v:.4%}" for k, v in self.top_k.items()),
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
        return "\n".join(lines)


def evaluate(
    run: str | Path | Run,
    data: str | None = None,
    split: str = "test",
    top_k: int = 5,
    batch_size: int = 1000,
    cache_dir: str | Path | None = None,
) -> EvaluationReport:
    """Evaluate a run (directory, checkpoint file or loaded :class:`Run`) on a split.

    Args:
        data: dataset spec; default the one the run was trained on.
        split: ``"test"`` (default) or ``"train"``.
        top_k: report top-1 .. top-k accuracies for k in {1, top_k} (capped at the classes).

    Raises:
        DataError: the data's classes differ from the run's.
    """
    if split not in ("test", "train"):
        raise ConfigError(f"expected split test or train, received split={split!r}")
    if top_k < 1:
        raise ConfigError(f"expected top_k >= 1, received top_k={top_k}")
    run = run if isinstance(run, Run) else load_run(run)
    spec = data or run.data
    splits = load_dataset(spec, cache_dir)
    if tuple(splits.classes) != tuple(run.classes):
        raise DataError(
            f"expected data with the run's classes {list(run.classes)}, received {spec} with "
            f"classes {list(splits.classes)}"
        )
    dataset = splits.test if split == "test" else splits.train
    logits = compute_logits(run.model, dataset.images, run.preprocessing, batch_size)
    labels = dataset.labels
    predicted = logits.argmax(1)
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
        loss=F.cross_entropy(logits, labels).item(),
        accuracy=(predicted == labels).double().mean().item(),
        top_k={k: top_k_accuracy(logits, labels, k) for k in ks},
        classes=run.classes,
        per_class=per_class,
        confusion_matrix=matrix.tolist(),
    )
