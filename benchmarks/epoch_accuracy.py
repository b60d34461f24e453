"""Test accuracy after every epoch of a ``fit`` run, outside the epoch's timed seconds (used by
the benchmark scripts beside it)."""

from __future__ import annotations

from typing import Any

from cnnlab.data.dataset import ImageSplit
from cnnlab.training.callbacks import Callback
from cnnlab.training.history import History
from cnnlab.training.run import fit


class TestAccuracy(Callback):
    """Records test accuracy after each epoch. Under DDP the processes compute it in parts and
    gather the rows (one process computes it whole)."""

    key = "test_accuracy"

    def __init__(self, test: ImageSplit) -> None:
        self.test = test
        self.accuracies: list[float] = []

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        logits = trainer.dist.gather_rows(
            self.test, lambda part: trainer.engine.logits(part, trainer.preprocessing)
        )  # (N, classes)
        self.accuracies.append((logits.argmax(1) == self.test.labels).float().mean().item())


def accuracy_rows(history: History, callback: TestAccuracy) -> list[dict]:
    """One row per epoch: ``epoch``, ``train_seconds`` (cumulative) and ``test_accuracy``."""
    seconds, rows = 0.0, []
    for epoch, epoch_seconds, accuracy in zip(
        history.epoch, history.history["seconds"], callback.accuracies
    ):
        seconds += epoch_seconds
        rows.append({"epoch": epoch, "train_seconds": seconds, "test_accuracy": accuracy})
    return rows


def seconds_to(rows: list[dict], target: float) -> float | None:
    """Training seconds up to the first epoch at ``target`` test accuracy, or ``None``."""
    return next((r["train_seconds"] for r in rows if r["test_accuracy"] >= target), None)


def fit_with_test_accuracy(model: Any, data: Any, **options: Any) -> list[dict]:
    """``fit(model, data, **options)`` quietly, in this process, with the test split of
    ``data`` (a loaded ``DatasetSplits``) measured after every epoch: :func:`accuracy_rows`."""
    callback = TestAccuracy(data.test)
    history = fit(model, data, verbose=False, progress=False, callbacks=[callback], **options)
    return accuracy_rows(history, callback)
