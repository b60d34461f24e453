"""Test accuracy after every epoch of a ``fit`` run, outside the epoch's timed seconds (used by
the benchmark scripts beside it)."""

from __future__ import annotations

import time
from typing import Any

from cnnlab.data.dataset import ImageSplit
from cnnlab.evaluation.tta import tta_log_probabilities, tta_views
from cnnlab.training.callbacks import Callback
from cnnlab.training.history import History
from cnnlab.training.run import fit


class TestAccuracy(Callback):
    """Records test accuracy after each epoch. Under DDP the processes compute it in parts and
    gather the rows (one process computes it whole). With a test-time augmentation ``tta``
    (the torch engine only), also the TTA accuracy after epoch ``tta_epoch`` and the seconds
    its evaluation took."""

    key = "test_accuracy"

    def __init__(self, test: ImageSplit, tta: str = "none", tta_epoch: int = 0) -> None:
        self.test = test
        self.tta, self.tta_epoch = tta, tta_epoch
        self.accuracies: list[float] = []
        self.tta_accuracy: float | None = None
        self.tta_seconds: float | None = None

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        logits = trainer.dist.gather_rows(
            self.test, lambda part: trainer.engine.logits(part, trainer.preprocessing)
        )  # (N, classes)
        self.accuracies.append((logits.argmax(1) == self.test.labels).float().mean().item())
        if self.tta != "none" and epoch == self.tta_epoch:
            start = time.perf_counter()
            views = tta_views(self.tta, trainer.preprocessing, None)
            _, log_probs = trainer.dist.gather_rows(
                self.test,
                lambda part: tta_log_probabilities(
                    trainer.engine.model, part, trainer.preprocessing, views
                ),
            )
            self.tta_seconds = time.perf_counter() - start
            self.tta_accuracy = (log_probs.argmax(1) == self.test.labels).float().mean().item()


def accuracy_rows(history: History, callback: TestAccuracy) -> list[dict]:
    """One row per epoch: ``epoch``, ``train_seconds`` (cumulative) and ``test_accuracy``;
    the TTA epoch's row also ``test_accuracy_tta`` and ``tta_seconds``."""
    seconds, rows = 0.0, []
    for epoch, epoch_seconds, accuracy in zip(
        history.epoch, history.history["seconds"], callback.accuracies
    ):
        seconds += epoch_seconds
        rows.append({"epoch": epoch, "train_seconds": seconds, "test_accuracy": accuracy})
        if callback.tta_accuracy is not None and epoch == callback.tta_epoch:
            rows[-1]["test_accuracy_tta"] = callback.tta_accuracy
            rows[-1]["tta_seconds"] = callback.tta_seconds
    return rows


def seconds_to(rows: list[dict], target: float) -> float | None:
    """Training seconds up to the first epoch at ``target`` test accuracy, or ``None``."""
    return next((r["train_seconds"] for r in rows if r["test_accuracy"] >= target), None)


def fit_with_test_accuracy(
    model: Any, data: Any, tta: str = "none", tta_epoch: int = 0, **options: Any
) -> list[dict]:
    """``fit(model, data, **options)`` quietly, in this process, with the test split of
    ``data`` (a loaded ``DatasetSplits``) measured after every epoch (with ``tta`` after
    ``tta_epoch``): :func:`accuracy_rows`."""
    callback = TestAccuracy(data.test, tta, tta_epoch)
    history = fit(model, data, verbose=False, progress=False, callbacks=[callback], **options)
    return accuracy_rows(history, callback)
