"""What a finished training run amounts to: its history and the test metrics of the
checkpoint it keeps (what ``cnnlab train`` and ``cnnlab finetune`` print)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.evaluation.evaluate import EvaluationReport, evaluate
from cnnlab.runs import ThreadsUsed, load_run, read_run_config
from cnnlab.training.history import History


@dataclass(frozen=True)
class TrainingResult:
    """A trained run's history and its test-split evaluation.

    Attributes:
        run: the run directory.
        history: what training returned (one row per epoch).
        test: the evaluation of the run's kept checkpoint (``best``, else ``last``) on the
            test split of its dataset, with the run's ``test_tta`` (``test.tta`` then holds
            the single-view accuracy and loss).
        threads: the thread count that checkpoint was trained with, and how it was chosen
            (None: not recorded).
    """

    run: str
    history: History
    test: EvaluationReport
    threads: ThreadsUsed | None = None

    @property
    def checkpoint_name(self) -> str:
        """``best`` or ``last``: which of the run's checkpoints was evaluated."""
        return Path(self.test.checkpoint).stem

    def to_dict(self) -> dict[str, Any]:
        """``cnnlab train --json``: the run, its threads, its history and the test metrics."""
        return {
            "run": self.run,
            "threads": None if self.threads is None else self.threads.to_dict(),
            **self.history.to_dict(),
            "test": {
                "accuracy": self.test.accuracy,
                "loss": self.test.loss,
                "checkpoint": self.test.checkpoint,
                "tta": self.test.tta,
            },
        }

    def format(self) -> str:
        """The one line ``cnnlab train`` prints at the end."""
        tta = self.test.tta
        views = (
            f" with {tta['mode']} TTA, {tta['views']} views (single view "
            f"{tta['single_view']['accuracy']:.2%})"
            if tta
            else ""
        )
        return (
            f"test accuracy {self.test.accuracy:.2%}{views} (loss {self.test.loss:.4f}) on "
            f"{self.test.examples} test images with the {self.checkpoint_name} checkpoint; "
            f"run in {self.run}"
        )


def training_result(
    run_dir: str | Path, history: History, *, cache_dir: str | Path | None = None
) -> TrainingResult:
    """Evaluate a freshly trained run on its test split, with the test-time augmentation its
    configuration asks for (``test_tta``).

    Args:
        run_dir: the run directory training wrote.
        history: what :func:`cnnlab.fit` or :func:`cnnlab.finetune` returned for it.
        cache_dir: dataset cache folder.

    Raises:
        CheckpointError: ``run_dir`` holds no run.
        DataError: the run's dataset cannot be loaded.
    """
    run = load_run(run_dir)  # its kept checkpoint, as evaluate would load it
    tta = read_run_config(Path(run_dir))["config"].get("test_tta", "none")
    report = evaluate(run, tta=tta, cache_dir=cache_dir)
    return TrainingResult(str(run_dir), history, report, run.meta.threads)
