"""Transfer learning: a trained network, a new head, some layers frozen, cached features.

Seed 002's recipe: take a trained network, replace its softmax layer with one for the new
classes, freeze the backbone when the new data is small, only the shallow layers when it is
medium, nothing when it is large; with a frozen backbone, compute its features once, keep them on
disk, and train only the head on them.

``finetune(source, data, out=...)`` is :func:`cnnlab.fit` with ``finetune_from=source``; the
run starts from the source's weights (:mod:`cnnlab.training.network_start`) and, with
``cache_features``, trains its head on cached backbone features
(:mod:`cnnlab.training.features`). The run records the source, the freeze spec and the names of
the frozen parameters (``RunMeta.finetune``, ``RunMeta.frozen``), so ``load_run`` rebuilds the
new architecture and marks the same parameters non-trainable (``cnnlab summary RUN`` counts them
as such).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnnlab.data.dataset import DatasetSplits
from cnnlab.errors import ConfigError
from cnnlab.runs import load_run
from cnnlab.training.freezing import frozen_names
from cnnlab.training.history import History
from cnnlab.training.run import fit

#: ``finetune``'s default ``min_steps`` when no ``epochs`` are given: fine-tuning data is often
#: small (the README's 500 digits are 4 batches an epoch), and the 12 steps of 3 such epochs
#: leave the new head half trained (53% on digits 5-9; 200 steps: 83%, BENCHMARKS.md).
FINETUNE_MIN_STEPS = 200


def finetune(
    source: str | Path,
    data: str | DatasetSplits,
    *,
    out: str | Path | None = None,
    freeze: str = "none",
    head_only: bool = False,
    cache_features: bool = False,
    lr_backbone: float | None = None,
    **options: Any,
) -> History:
    """Fine-tune a trained run (or checkpoint) on new data; the Python face of ``cnnlab
    finetune``.

    Args:
        source: run directory or ``.safetensors`` checkpoint of a cnnlab classifier.
        data: dataset spec or loaded splits (its classes become the new head's).
        out: new run directory (None: train in memory).
        freeze: ``none``, ``all``, ``N`` or ``up-to:LAYER`` (:mod:`cnnlab.training.freezing`).
        head_only: train only the new classifier layer (same as ``freeze="head-only"``).
        cache_features: train the head on cached backbone features (needs a frozen backbone:
            ``freeze="all"`` is implied when ``freeze`` is ``none``).
        lr_backbone: learning rate of the trainable backbone layers (default: ``lr``).
        **options: :func:`fit` options (``epochs``, ``lr``, ``classes``, ``per_class``,
            ``cache_dir``, ``verbose`` ...); without ``epochs``, ``min_steps`` defaults to
            :data:`FINETUNE_MIN_STEPS` (the epochs are raised until training takes that many
            optimiser steps).

    Raises:
        CheckpointError: ``source`` is not a classifier checkpoint cnnlab can rebuild.
        ConfigError: both ``head_only`` and another ``freeze``; a freeze LAYER that is not one
            of the network's layers (the message lists them).
    """
    if head_only and freeze not in ("none", "head-only"):
        raise ConfigError(
            f"expected either --head-only or --freeze, received head_only=True, freeze={freeze!r}"
        )
    freeze = "head-only" if head_only else freeze
    if cache_features and freeze == "none":
        freeze = "all"
    if "epochs" not in options:  # few examples: enough steps for the schedule (see min_steps)
        options.setdefault("min_steps", FINETUNE_MIN_STEPS)
    run = load_run(source)
    spec = run.meta.model
    frozen_names(run.model, freeze)  # a bad LAYER fails here, before anything is written
    return fit(
        spec.reference,  # a FILE.py:CALLABLE model by its absolute path: any folder works
        data,
        out=out,
        model_kwargs=dict(spec.kwargs),
        finetune_from=str(Path(source).resolve()),
        freeze=freeze,
        cache_features=cache_features,
        lr_backbone=lr_backbone,
        **options,
    )
