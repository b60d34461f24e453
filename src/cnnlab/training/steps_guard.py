"""A guard rail: too few optimisation steps per epoch to learn anything.

A batch as large as the training set trains one step per epoch (``--batch-size 100000`` on
MNIST: 3 steps in 3 epochs, 10% accuracy), and a small folder with the default batch gets a
handful (97 images with batch 128: one step per epoch, and the one-cycle schedule spends its
whole warm-up and decay in 3 steps, leaving a model that predicts one class). Training still
runs as asked; one warning says so and suggests a batch size that gives
:data:`MIN_STEPS_PER_EPOCH` steps or more.
"""

from __future__ import annotations

import math

MIN_STEPS_PER_EPOCH = 10
DEFAULT_BATCH = 128


def suggested_batch_size(train_examples: int) -> int:
    """The largest power of two up to :data:`DEFAULT_BATCH` that gives at least
    :data:`MIN_STEPS_PER_EPOCH` steps per epoch (1 for the smallest sets)."""
    largest = max(1, train_examples // MIN_STEPS_PER_EPOCH)
    return min(DEFAULT_BATCH, 2 ** int(math.log2(largest)))


def few_steps_warning(train_examples: int, batch_size: int, epochs: int) -> str | None:
    """The warning for ``batch_size`` on ``train_examples`` training examples, or None."""
    steps = math.ceil(train_examples / batch_size) if train_examples else 0
    if steps >= MIN_STEPS_PER_EPOCH or train_examples == 0:
        return None
    suggested = suggested_batch_size(train_examples)
    if suggested >= batch_size:
        return None  # nothing smaller would do better (a tiny training set)
    whole = "the whole training set in one batch, " if batch_size >= train_examples else ""
    return (
        f"--batch-size {batch_size} on {train_examples} training examples gives {whole}"
        f"{steps} step{'s' if steps != 1 else ''} per epoch ({steps * epochs} in {epochs} "
        f"epochs), too few to learn; use --batch-size {suggested} or lower "
        f"({math.ceil(train_examples / suggested)} steps per epoch)"
    )
